"""The migration's mover in-process, with its clock passed in."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

from glacierd import inventory
from glacierd.emulator import Emulator
from glacierd.migration.mover import Mover, MoveSettings, plan_inventory
from glacierd.s3.client import S3Client
from glacierd.store.migrations import MigrationLedger
from glacierd.store.states import utcnow
from tests.conftest import MIB, client_for, fast_policy, random_file_bytes, store_at_head


def test_output_too_close_to_its_24_hours_is_asked_for_again_first(tmp_path: Path) -> None:
    with Emulator(tmp_path / "emu", job_delay=0.2) as emu:
        glacier = client_for(emu)
        glacier.create_vault("v")
        data = random_file_bytes(9 * MIB, seed=4)
        archive_id = glacier.upload_archive("v", data, description="x.bin")
        s3 = S3Client(emu.region, endpoint_url=emu.endpoint_url, credentials=emu.credentials,
                      retry_policy=fast_policy())
        s3.create_bucket("dest")
        ledger = MigrationLedger(store_at_head(tmp_path))
        tree = emu.state.archive("v", archive_id)["SHA256TreeHash"]
        inv = inventory.Inventory("arn", utcnow(), (inventory.InventoryArchive(
            archive_id, "x.bin", utcnow(), len(data), tree),))
        plan_inventory(ledger, inv, vault="v", bucket="dest", prefix="", storage_class="STANDARD",
                       tier="Bulk", part_size=8 * MIB)
        clock = [utcnow()]
        mover = Mover(ledger, glacier, "v", s3, MoveSettings(), now=lambda: clock[0])
        assert mover.step()  # requested
        [item] = ledger.items()
        assert item.job_id is not None
        deadline = time.monotonic() + 10
        while glacier.describe_job("v", item.job_id)["StatusCode"] != "Succeeded":
            assert time.monotonic() < deadline
            time.sleep(0.05)  # the emulator's job delay: real time
        clock[0] += dt.timedelta(hours=23, minutes=30)  # ready long ago: output nearly gone
        assert mover.step()
        [item] = ledger.items()
        assert item.status == "planned" and item.job_id is None
        assert emu.stats()["part_bytes_received"] == 0, "nothing read from a lapsing job"
        clock[0] = utcnow()
        while mover.step():
            pass
        [item] = ledger.items()
        assert item.status == "done" and item.jobs_requested == 2
        with s3.get_object("dest", "x.bin") as answer:
            assert answer.content == data
