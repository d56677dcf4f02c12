"""`check --deploy` with production settings (DEBUG off, a proper .env): clean with the HTTP SMS
gateway, a warning when production would send SMS to the console (nobody gets them)."""

import os
import subprocess
import sys
from pathlib import Path

from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parent.parent


def _check_deploy(tmp_path: Path, sms_backend: str) -> subprocess.CompletedProcess:
    env_file = tmp_path / "prod.env"
    env_file.write_text(
        "DJANGO_DEBUG=false\n"
        "DJANGO_SECRET_KEY=Zq8-k3v_2Lr9PpXm4Tt7Yy1Ww6Ee5Rr0Uu3Ii8Oo2Aa7Ss4Dd9Ff1Gg6Hh3Jj\n"
        "DJANGO_ALLOWED_HOSTS=healthkit.example.gov.cn\n"
        f"PII_ENCRYPTION_KEYS={Fernet.generate_key().decode()}\n"
        "PII_HASH_KEY=prod-hash-key-from-the-vault-000000000000\n"
        f"DATABASE_URL={os.environ.get('DATABASE_URL', 'postgres://postgres@127.0.0.1:5432/x')}\n"
        f"SMS_BACKEND={sms_backend}\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PII_", "SMS_"))}
    env["HEALTHKIT_ENV_FILE"] = str(env_file)
    env.pop("DATABASE_URL", None)
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT, env=env, capture_output=True, text=True, check=False,
    )


def test_check_deploy_is_clean(tmp_path):
    result = _check_deploy(tmp_path, "healthkit.sms.HttpBackend")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_console_sms_backend_is_a_deploy_warning(tmp_path):
    result = _check_deploy(tmp_path, "healthkit.sms.ConsoleBackend")
    assert result.returncode != 0
    assert "healthkit.W001" in result.stderr + result.stdout and "ConsoleBackend" in result.stderr + result.stdout
