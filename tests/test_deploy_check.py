"""Production settings (DEBUG off, a proper .env) pass `check --deploy` without warnings."""

import os
import subprocess
import sys
from pathlib import Path

from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parent.parent


def test_check_deploy_is_clean(tmp_path):
    env_file = tmp_path / "prod.env"
    env_file.write_text(
        "DJANGO_DEBUG=false\n"
        "DJANGO_SECRET_KEY=Zq8-k3v_2Lr9PpXm4Tt7Yy1Ww6Ee5Rr0Uu3Ii8Oo2Aa7Ss4Dd9Ff1Gg6Hh3Jj\n"
        "DJANGO_ALLOWED_HOSTS=healthkit.example.gov.cn\n"
        f"PII_ENCRYPTION_KEYS={Fernet.generate_key().decode()}\n"
        "PII_HASH_KEY=prod-hash-key-from-the-vault-000000000000\n"
        f"DATABASE_URL={os.environ.get('DATABASE_URL', 'postgres://postgres@127.0.0.1:5432/x')}\n"
        "SMS_BACKEND=healthkit.sms.HttpBackend\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PII_", "SMS_"))}
    env["HEALTHKIT_ENV_FILE"] = str(env_file)
    env.pop("DATABASE_URL", None)
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT, env=env, capture_output=True, text=True, check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout
