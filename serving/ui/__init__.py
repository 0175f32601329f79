"""The server-rendered pages: `app` installs them, `login` and `pages` route them."""
