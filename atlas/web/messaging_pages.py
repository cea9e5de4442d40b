"""The outbox and the messaging settings pages."""
from flask import Blueprint

bp = Blueprint("messaging_pages", __name__)
