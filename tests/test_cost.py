"""The cost engine (issue 16's second half): the price table and its overrides,
what is stored priced with its overhead, the early-deletion liability, the
write requests of the month counted against the emulator's own count, and the
prices that ``restore --dry-run`` and ``status`` tell before money is spent."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from glacierd import pricing
from glacierd.emulator import fetch_stats
from tests.conftest import MIB, emulator_process, random_file
from tests.test_crash import run
from tests.test_s3_e2e import s3_config

GB = 2**30
NOW = dt.datetime(2026, 12, 2, 12, 0, tzinfo=dt.UTC)


def test_an_object_costs_its_bytes_and_its_overhead() -> None:
    data, overhead = pricing.billed_month(GB, "DEEP_ARCHIVE")
    assert data == pytest.approx(0.00099)
    assert overhead == pytest.approx(32 * 1024 / GB * 0.00099 + 8 * 1024 / GB * 0.023)
    # GLACIER_IR bills a small object as 128 KB.
    _data, padded = pricing.billed_month(1000, "GLACIER_IR")
    assert padded == pytest.approx((128 * 1024 - 1000) / GB * 0.004)
    assert pricing.billed_month(GB, "VAULT")[1] == pytest.approx(32 * 1024 / GB * 0.0036)


def test_early_deletion_liability_and_retrieval_by_tier() -> None:
    objects = [pricing.StoredObject(GB, NOW - dt.timedelta(days=30)),
               pricing.StoredObject(GB, NOW - dt.timedelta(days=200)),
               pricing.StoredObject(1000, NOW)]
    cost = pricing.stored_cost(objects, "DEEP_ARCHIVE", NOW)
    assert (cost.objects, cost.young_objects, cost.small_objects) == (3, 2, 1)
    first = sum(pricing.billed_month(GB, "DEEP_ARCHIVE")) * 150 / 30
    third = sum(pricing.billed_month(1000, "DEEP_ARCHIVE")) * 180 / 30
    assert cost.early_deletion_usd == pytest.approx(first + third)
    assert pricing.retrieval_cost([GB, GB], "DEEP_ARCHIVE", "Bulk") == pytest.approx(
        2 * 0.0025 + 2 / 1000 * 0.025)
    assert pricing.retrieval_cost([GB], "DEEP_ARCHIVE", "Expedited") is None
    assert pricing.tiers_of("DEEP_ARCHIVE") == ["Standard", "Bulk"]
    assert pricing.retrieval_delay("DEEP_ARCHIVE", "Expedited") == "not offered"


def test_overrides_replace_single_figures_and_name_what_is_wrong() -> None:
    table = pricing.with_overrides({"DEEP_ARCHIVE": {"storage_gb_month": 0.002,
                                                     "retrieval_per_gb_Bulk": 0.004}})
    assert table["DEEP_ARCHIVE"].storage_gb_month == 0.002
    assert table["DEEP_ARCHIVE"].retrieval_per_gb == {"Standard": 0.02, "Bulk": 0.004}
    assert pricing.PRICES["DEEP_ARCHIVE"].storage_gb_month == 0.00099, "defaults untouched"
    with pytest.raises(ValueError, match=r"DEEP_ARCHIVE\.storage_per_gb: unknown price"):
        pricing.with_overrides({"DEEP_ARCHIVE": {"storage_per_gb": 1.0}})
    with pytest.raises(ValueError, match="unknown storage class 'COLD'"):
        pricing.with_overrides({"COLD": {"storage_gb_month": 1.0}})


def test_a_bad_price_in_the_config_is_named(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('[vault]\nname = "v"\n[prices]\nVAULT = { storage_gb_month = -1 }\n')
    done = run(cfg, "cost")
    assert done.returncode == 78 and "[prices].VAULT.storage_gb_month" in done.stderr
    assert "Traceback" not in done.stderr


def test_cost_status_and_dry_run_on_a_deep_archive_bucket(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    sizes = {"a.txt": 3000, "b.txt": 70_000, "big.bin": 20 * MIB + 5}
    for name, size in sizes.items():
        random_file(data_dir / name, size, seed=size % 7)
    with emulator_process(tmp_path / "emu") as url:
        cfg = s3_config(tmp_path, url)
        assert run(cfg, "db", "upgrade").returncode == 0
        assert run(cfg, "upload", str(data_dir)).returncode == 0
        written = fetch_stats(url)["requests"]
        report = json.loads(run(cfg, "cost", "--json").stdout)
        status = json.loads(run(cfg, "status", "--json", "--summary").stdout)
        dry = json.loads(run(cfg, "restore", str(data_dir), "--dry-run", "--json").stdout)
        text = run(cfg, "cost")
        cfg.write_text(cfg.read_text() + "[prices]\nDEEP_ARCHIVE = { storage_gb_month = 1.0 }\n")
        dearer = json.loads(run(cfg, "cost", "--json").stdout)
    expected = sum(sum(pricing.billed_month(s, "DEEP_ARCHIVE")) for s in sizes.values())
    storage = report["storage"]
    assert (storage["objects"], storage["bytes"]) == (3, sum(sizes.values()))
    assert storage["month_usd"] == pytest.approx(expected)
    assert (report["young_objects"], report["small_objects"]) == (3, 2)
    # The month's write requests, as the emulator counted them.
    counted = sum(written.get(op, 0) for op in ("PutObject", "CreateMultipartUpload",
                                                 "UploadPart", "CompleteMultipartUpload",
                                                 "PutObjectTagging"))
    assert report["requests_this_month"] == counted
    assert status["cost"]["month_usd"] == pytest.approx(expected)
    assert set(dry["tiers"]) == {"Standard", "Bulk"}
    assert dry["tiers"]["Bulk"]["usd"] == pytest.approx(
        sum(sizes.values()) / GB * 0.0025 + 3 / 1000 * 0.025)
    assert "within 48 h" in dry["tiers"]["Bulk"]["typical_delay"]
    assert text.returncode == 0 and "early deletion: 3 archives younger than 180 days" in \
        text.stdout
    assert dearer["storage"]["month_usd"] > 100 * storage["month_usd"]
