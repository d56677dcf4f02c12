import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "healthkit.settings")
# Requests wait a bounded time for the database (DATABASE_WEB_* in healthkit.settings).
os.environ.setdefault("HEALTHKIT_WEB_PROCESS", "true")
application = get_wsgi_application()
