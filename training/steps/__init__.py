"""`riskcast train` as named steps, each a function with typed inputs and one typed output.

`training.pipeline.train` runs them in this order (reading and writing happen only in the
first step, `truth`'s readers and the last step):

| step | function | in | out |
|---|---|---|---|
| plan | `plan.plan_training` | config, feature spec, trials | `TrainingPlan` |
| load | `data.load_dataset` | store, `TrainingPlan` | `Dataset` |
| prepare | `data.prepare_training_data` | `TrainingPlan`, `Dataset` | `TrainingData` |
| tune | `fit.tune_model` | `TrainingPlan`, `TrainingData`, study storage | `TuneResult` |
| fit | `fit.fit_booster` | `TrainingPlan`, `TrainingData`, `TuneResult` | LightGBM booster |
| calibrate | `fit.calibrate_model` | plan, data, tuning, booster | `FittedModel` |
| baselines | `fit.fit_baselines` | `TrainingPlan`, `TrainingData` | `Baselines` |
| evaluate | `evaluate.evaluate_models` | plan, data, model, baselines, p_true | `Evaluated` |
| report | `record.build_run_record` | `RunInputs` | `tracking.RunRecord` |
| register | `register.register_run` | `RunRecord`, model, where | `tracking.Logged` |

The truth for the oracle is chosen by `training.truth.resolve_truth` from the config's
``truth_dir`` (a truth manifest) and read by `training.truth.read_p_true`.
"""
