"""The contacts list and the contact page."""
from flask import Blueprint

bp = Blueprint("contact_pages", __name__)
