"""``Endpoint.resolve``: where a command's requests go, worked out once.

Flags beat the environment, the environment beats the default; an existing run goes back
to the endpoint it recorded; an emulated endpoint needs no key; what is written down
(run.json, file names, output) never holds the key or a URL's credentials. The clients
are the real SDK's, talking to the emulator over loopback.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from batchmark import CredentialsError, load_config
from batchmark._errors import UsageError
from batchmark.config._schema import RunSettings
from batchmark.emulator import Emulator
from batchmark.runs._endpoint import MAX_RETRIES, Endpoint, endpoint_name, redact_url

from .pipeline.support import write_config

KEY = "sk-ant-test-NEVER-WRITTEN-0123456789"
URL_SECRET = "pr0xy-s3cr3t"
ENV = {"ANTHROPIC_API_KEY": KEY}


def resolve(env: dict[str, str] | None = None, **kwargs: object) -> Endpoint:
    return Endpoint.resolve(env=ENV if env is None else env, **kwargs)  # type: ignore[arg-type]


# --- a new run: flags > environment > defaults ----------------------------------------------


def test_the_base_url_flag_wins_over_anthropic_base_url() -> None:
    env = {**ENV, "ANTHROPIC_BASE_URL": "http://127.0.0.1:2"}
    endpoint = resolve(env, base_url="http://127.0.0.1:1")

    assert endpoint.url == "http://127.0.0.1:1"
    assert endpoint.name == "127.0.0.1_1"


def test_anthropic_base_url_is_the_endpoint_without_a_flag() -> None:
    endpoint = resolve({**ENV, "ANTHROPIC_BASE_URL": "http://127.0.0.1:2"})

    assert endpoint.url == "http://127.0.0.1:2"
    assert endpoint.name == "127.0.0.1_2"


def test_without_a_url_the_endpoint_is_the_real_api() -> None:
    endpoint = resolve()

    assert endpoint.url is None
    assert endpoint.name == "api.anthropic.com"
    assert not endpoint.emulated


def test_the_api_key_argument_wins_over_anthropic_api_key() -> None:
    assert resolve(api_key="from-argument").key_source == "api_key argument"
    assert resolve().key_source == "ANTHROPIC_API_KEY"
    with resolve(api_key="from-argument").client() as client:
        assert client.api_key == "from-argument"
    with resolve().client() as client:
        assert client.api_key == KEY


def test_a_real_endpoint_without_a_key_is_refused_naming_the_variable() -> None:
    with pytest.raises(
        CredentialsError, match="no API key: set ANTHROPIC_API_KEY, or pass --emulate"
    ):
        resolve({})


def test_without_strict_a_missing_key_waits_for_the_client() -> None:
    endpoint = resolve({}, strict=False)

    assert endpoint.key_source is None
    with pytest.raises(CredentialsError, match="ANTHROPIC_API_KEY"):
        endpoint.client()


def test_the_config_gives_the_api_version_and_the_client_sends_it() -> None:
    endpoint = resolve(config=RunSettings(api_version="2023-06-01"))

    with endpoint.client() as client:
        assert client.default_headers["anthropic-version"] == "2023-06-01"
        assert client.max_retries == MAX_RETRIES


def test_estimate_counts_tokens_where_a_key_or_a_url_is_set() -> None:
    assert resolve({}, strict=False).token_counter() is None  # the local approximation
    assert resolve(emulate=True).token_counter() is None
    keyless = resolve({}, base_url="http://127.0.0.1:9", strict=False).token_counter()
    assert keyless is not None and keyless.api_key == "unset"  # a gateway may need none
    with resolve().token_counter() as client:  # type: ignore[union-attr]
        assert client.api_key == KEY and client.max_retries == 2
    keyless.close()


# --- emulated ---------------------------------------------------------------------------


def test_an_emulated_endpoint_needs_no_key_and_ignores_anthropic_base_url() -> None:
    endpoint = resolve({"ANTHROPIC_BASE_URL": "http://127.0.0.1:9"}, emulate=True)

    assert endpoint.emulated and re.fullmatch(r"emulator-[0-9a-f]{12}", endpoint.name)
    assert endpoint.url is None and endpoint.key_source == "emulator"


def test_emulate_with_a_base_url_is_refused() -> None:
    with pytest.raises(UsageError, match="--emulate cannot be combined with --base-url"):
        resolve(emulate=True, base_url="http://127.0.0.1:9")


def test_an_emulated_endpoint_serves_the_configs_emulator_while_the_block_lasts(
    tmp_path: Path,
) -> None:
    spec = load_config(write_config(tmp_path, emulator={"responder": "echo", "seed": 3}))
    endpoint = resolve({}, emulate=True, config=spec)
    with pytest.raises(RuntimeError, match="serving"):
        endpoint.client()

    with endpoint.serving() as live, live.client() as client:
        assert live.url is not None and live.url.startswith("http://127.0.0.1:")
        assert list(client.messages.batches.list()) == []  # the real SDK, over loopback
    assert live.emulator == spec.emulator and live.emulator.seed == 3


def test_serving_a_real_endpoint_is_the_endpoint_itself() -> None:
    endpoint = resolve(base_url="http://127.0.0.1:9")
    with endpoint.serving() as live:
        assert live is endpoint


# --- an existing run: what run.json recorded --------------------------------------------


def _recorded(base_url: str | None, endpoint: str, emulated: bool = False) -> dict:
    return {"run_id": "r1", "base_url": base_url, "endpoint": endpoint, "emulated": emulated}


def test_a_run_goes_back_to_its_recorded_url_whatever_anthropic_base_url_says() -> None:
    run = _recorded("http://127.0.0.1:1", "127.0.0.1_1")
    endpoint = resolve({**ENV, "ANTHROPIC_BASE_URL": "http://127.0.0.1:2"}, run=run)

    assert endpoint.url == "http://127.0.0.1:1" and endpoint.name == "127.0.0.1_1"


def test_the_base_url_flag_overrides_the_recorded_url_but_not_the_name() -> None:
    run = _recorded("http://127.0.0.1:1", "127.0.0.1_1")
    endpoint = resolve(run=run, base_url="http://127.0.0.1:3")

    assert endpoint.url == "http://127.0.0.1:3"
    assert endpoint.name == "127.0.0.1_1"  # its cache and registry stay the run's


def test_a_run_made_against_the_real_api_follows_anthropic_base_url() -> None:
    run = _recorded(None, "api.anthropic.com")

    assert resolve({**ENV, "ANTHROPIC_BASE_URL": "http://127.0.0.1:2"}, run=run).url == (
        "http://127.0.0.1:2"
    )
    assert resolve(run=run).url is None


def test_an_emulated_run_stays_emulated() -> None:
    endpoint = resolve({}, run=_recorded(None, "emulator", emulated=True))

    assert endpoint.emulated and endpoint.name == "emulator"


def test_a_run_without_a_key_is_refused_naming_the_run() -> None:
    with pytest.raises(CredentialsError, match="ANTHROPIC_API_KEY to the key run r1"):
        resolve({}, run=_recorded(None, "api.anthropic.com"))


# --- credentials in a URL ------------------------------------------------------------------

SECRET_URL = f"https://user:{URL_SECRET}@proxy.example:8443/v1?key={URL_SECRET}&plain"


def test_credentials_in_a_url_are_redacted_in_what_is_written_down() -> None:
    endpoint = resolve(base_url=SECRET_URL)

    assert endpoint.url == SECRET_URL  # what the client connects to
    assert endpoint.record() == {
        "base_url": "https://***@proxy.example:8443/v1?key=***&plain",
        "endpoint": "proxy.example_8443",
        "emulated": False,
    }
    for text in (repr(endpoint), str(endpoint.record()), endpoint.name):
        assert URL_SECRET not in text and KEY not in text


def test_a_redacted_url_is_used_again_only_from_the_same_anthropic_base_url() -> None:
    run = _recorded(redact_url(SECRET_URL), "proxy.example_8443")

    assert resolve({**ENV, "ANTHROPIC_BASE_URL": SECRET_URL}, run=run).url == SECRET_URL
    with pytest.raises(CredentialsError, match="credentials were not stored.*--base-url"):
        resolve({**ENV, "ANTHROPIC_BASE_URL": "https://proxy.example:8443/v1"}, run=run)
    lenient = resolve(ENV, run=run, strict=False)
    with pytest.raises(CredentialsError, match="--base-url"):
        lenient.client()


@pytest.mark.parametrize(
    ("url", "name"),
    [  # the names existing results roots' caches and registries already carry
        (None, "api.anthropic.com"),
        ("", "api.anthropic.com"),
        ("http://127.0.0.1:8080", "127.0.0.1_8080"),
        ("https://user:tok@proxy.example/v1?key=x&y", "proxy.example"),
        ("https://gw.example.com:443/", "gw.example.com_443"),
        ("http://[::1]:9000", "___1__9000"),
        ("gateway.local/x", "gateway.local_x"),
    ],
)
def test_endpoint_names_are_stable(url: str | None, name: str) -> None:
    assert endpoint_name(url) == name


def test_the_cache_and_registry_files_keep_their_names(tmp_path: Path) -> None:
    endpoint = resolve(base_url="http://127.0.0.1:8080")
    fingerprint = hashlib.sha256(KEY.encode()).hexdigest()[:12]

    assert endpoint.cache_path(tmp_path) == tmp_path / ".cache/responses-127.0.0.1_8080.sqlite"
    assert endpoint.claims_path(tmp_path) == (
        tmp_path / f".cache/claims-127.0.0.1_8080-{fingerprint}.sqlite"
    )
    emulated = resolve({}, emulate=True)  # named after its responder (emulated_name)
    fingerprint = hashlib.sha256(b"emulator").hexdigest()[:12]
    assert emulated.claims_path(tmp_path) == (
        tmp_path / f".cache/claims-{emulated.name}-{fingerprint}.sqlite"
    )
    assert emulated.cache_path(tmp_path) == tmp_path / f".cache/responses-{emulated.name}.sqlite"


# --- end to end: the command line against the emulator ---------------------------------


def _batchmark(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "batchmark", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200", **env},
        timeout=120,
    )


def _assert_nowhere(secret: str, results: Path, *outputs: str) -> None:
    files = [p for p in results.rglob("*") if p.is_file()]
    assert files
    for path in files:
        assert secret not in str(path)
        assert secret.encode() not in path.read_bytes(), path
    for output in outputs:
        assert secret not in output


def test_the_key_reaches_no_file_and_no_output_of_run_resume_status_and_cancel(
    tmp_path: Path,
) -> None:
    results = tmp_path / "results"
    config = str(write_config(tmp_path / "cfg"))
    with Emulator(processing_seconds=0.3).serve() as url:
        env = {"ANTHROPIC_BASE_URL": url, "ANTHROPIC_API_KEY": KEY}
        made = _batchmark("run", config, "--detach", "--results", str(results), env=env)
        assert made.returncode == 0, made.stderr
        run_id = made.stdout.strip()
        outputs = [made.stdout, made.stderr]
        for args in (
            ("status", run_id, "--format", "json"),
            ("resume", run_id, "--poll-interval", "0.05"),
            ("cancel", run_id),
            ("doctor", run_id, "--format", "json"),
        ):
            done = _batchmark(*args, "--results", str(results), env=env)
            assert done.returncode == 0, (args, done.stderr)
            outputs += [done.stdout, done.stderr]

    _assert_nowhere(KEY, results, *outputs)
    info = (results / "arith" / run_id / "run.json").read_text()
    assert '"base_url": "http://127.0.0.1:' in info


def test_credentials_in_the_url_reach_no_file_and_no_output(tmp_path: Path) -> None:
    # httpx turns URL user info into Basic auth, which the emulator (like the API)
    # refuses: the run fails at its first create, after its folder and cache were made.
    results = tmp_path / "results"
    config = str(write_config(tmp_path / "cfg"))
    with Emulator().serve() as url:
        secret_url = url.replace("http://", f"http://proxyuser:{URL_SECRET}@")
        env = {"ANTHROPIC_BASE_URL": secret_url, "ANTHROPIC_API_KEY": KEY}
        made = _batchmark("run", config, "-q", "--results", str(results), env=env)
        assert made.returncode == 2 and "refused the credentials" in made.stderr
        (folder,) = (results / "arith").iterdir()
        without = {"ANTHROPIC_API_KEY": KEY}
        again = _batchmark("resume", folder.name, "--results", str(results), env=without)

    assert again.returncode == 2
    assert "whose credentials were not stored" in again.stderr
    assert "http://***@127.0.0.1:" in again.stderr
    _assert_nowhere(URL_SECRET, results, made.stdout, made.stderr, again.stdout, again.stderr)
    _assert_nowhere(KEY, results, made.stdout, made.stderr, again.stdout, again.stderr)
