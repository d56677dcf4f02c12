"""Upload handlers: Django's own, with the browser's file name made safe to spool to disk.

Django names the temporary file of an upload over FILE_UPLOAD_MAX_MEMORY_SIZE after the upload's
extension ("tmpXXXX.upload" + everything after the last dot): a name whose "extension" is over
~240 bytes (80 Chinese characters) failed with ENAMETOOLONG, a 500, before any view ran. The
product never keeps an upload's name (stored files get random names), so a long one is cut.
"""

import os

from django.core.files.uploadhandler import TemporaryFileUploadHandler

MAX_EXTENSION_BYTES = 16
MAX_NAME_CHARS = 120


def safe_upload_name(name: str) -> str:
    """The name with an extension of at most 16 bytes (else none: its dots become "_") and at
    most 120 characters."""
    root, ext = os.path.splitext(name)
    if len(ext.encode("utf-8")) > MAX_EXTENSION_BYTES:
        root, ext = name.replace(".", "_"), ""
    return root[: MAX_NAME_CHARS - len(ext)] + ext


class SafeNameTemporaryFileUploadHandler(TemporaryFileUploadHandler):
    """Django's stream-to-disk handler, given a file name the file system accepts."""

    def new_file(self, field_name, file_name, *args, **kwargs):
        super().new_file(field_name, safe_upload_name(file_name), *args, **kwargs)
