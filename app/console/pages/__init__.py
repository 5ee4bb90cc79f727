"""The console's pages, one module each: thin adapters over app/services, like app/routers and app/cli.py."""
