"""Our client against moto's server, which implements Glacier's vault, archive
and job operations (not multipart): a second, independent peer."""

from __future__ import annotations

import time

import pytest

from glacierd.glacier import GlacierClient, GlacierError
from tests.conftest import fast_policy


@pytest.fixture(scope="module")
def moto_client(moto_endpoint: str) -> GlacierClient:
    return GlacierClient("us-east-1", endpoint_url=moto_endpoint,
                         credentials=("testing", "testing"), retry_policy=fast_policy(2))


def _wait_succeeded(client: GlacierClient, vault: str, job_id: str, timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.describe_job(vault, job_id)
        if job["StatusCode"] == "Succeeded":
            return job
        time.sleep(0.2)  # polling moto's own timer; there is no event to wait on
    raise AssertionError(f"job {job_id} did not succeed within {timeout}s")


def test_vaults_against_moto(moto_client: GlacierClient) -> None:
    moto_client.create_vault("alpha")
    moto_client.create_vault("beta")
    names = {v["VaultName"] for v in moto_client.list_vaults()}
    assert {"alpha", "beta"} <= names
    assert moto_client.describe_vault("alpha")["VaultName"] == "alpha"
    moto_client.delete_vault("beta")
    assert "beta" not in {v["VaultName"] for v in moto_client.list_vaults()}


def test_archives_and_jobs_against_moto(moto_client: GlacierClient) -> None:
    moto_client.create_vault("m")
    archive_id = moto_client.upload_archive("m", b"hello moto", description="greeting")
    assert archive_id
    job_id = moto_client.initiate_archive_retrieval("m", archive_id, tier="Expedited")
    assert any(j["JobId"] == job_id for j in moto_client.list_jobs("m"))
    job = _wait_succeeded(moto_client, "m", job_id)
    assert job["Action"] == "ArchiveRetrieval" and job["ArchiveId"] == archive_id
    with moto_client.get_job_output("m", job_id) as out:
        assert out.read() == b"hello moto"
    inventory = moto_client.initiate_inventory_job("m")
    _wait_succeeded(moto_client, "m", inventory)
    with moto_client.get_job_output("m", inventory) as out:
        assert archive_id in out.read().decode()
    moto_client.delete_archive("m", archive_id)
    # moto answers 400 VaultNotFound where Glacier says 404 ResourceNotFoundException;
    # either way the caller gets a GlacierError that names the problem.
    with pytest.raises(GlacierError, match=r"(?i)not found"):
        moto_client.describe_vault("no-such-vault")
