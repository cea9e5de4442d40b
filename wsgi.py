"""The WSGI entry point: gunicorn 'wsgi:app' and `flask --app wsgi ...`."""
import os

from atlas import create_app

app = create_app(os.environ.get("ATLAS_ENV", "development"))
