"""The webhooks page: endpoints with live counters, create (secret shown once), delivery log, replay and test."""
from flask import Blueprint

bp = Blueprint("webhook_pages", __name__, url_prefix="/webhooks")
