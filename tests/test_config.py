"""Config: strict, and every error names the file and the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from glacierd import config
from glacierd.errors import ConfigError

GOOD = """
[aws]
region = "eu-west-1"
endpoint_url = "http://127.0.0.1:9200"
access_key_id = "AKID"
secret_access_key = "s3cret"
[vault]
name = "backups"
create = true
[state]
dir = "state"
[upload]
part_size_mib = 32
concurrency = 2
bandwidth_limit = "8M"
retries = 3
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "glacierd.toml"
    path.write_text(text)
    return path


def test_good_config(tmp_path: Path) -> None:
    cfg = config.load(_write(tmp_path, GOOD))
    assert cfg.aws.region == "eu-west-1" and cfg.vault.create is True
    assert cfg.state.dir == tmp_path.resolve() / "state", "relative to the config file"
    assert cfg.upload.part_size == 32 * 2**20 and cfg.upload.bandwidth_limit == 8 * 2**20
    assert cfg.database_url == f"sqlite:///{tmp_path.resolve() / 'state' / 'glacierd.db'}"
    assert "s3cret" not in repr(cfg)


def test_an_s3_config_needs_no_vault(tmp_path: Path) -> None:
    cfg = config.load(_write(tmp_path, '[s3]\nbucket = "my-backups"\nprefix = "host/"\n'))
    assert cfg.s3 is not None and cfg.target == "my-backups"
    assert (cfg.s3.storage_class, cfg.s3.restore_days, cfg.s3.create) == ("DEEP_ARCHIVE", 1,
                                                                          False)


def test_defaults(tmp_path: Path) -> None:
    cfg = config.load(_write(tmp_path, '[vault]\nname = "v"\n'))
    assert (cfg.upload.part_size_mib, cfg.upload.concurrency, cfg.upload.bandwidth_limit) == (
        16, 4, None)
    assert cfg.vault.create is False and cfg.aws.region == "us-east-1"


@pytest.mark.parametrize(("text", "fragment"), [
    ('[vault]\nname = "v"\ncolour = "blue"\n', "[vault]: unknown key 'colour'"),
    ('[vault]\nname = "v"\n[uplod]\n', "unknown section [uplod]"),
    ("[aws]\n", "a [vault] or an [s3] section is required"),
    ('[vault]\nname = "v"\n[s3]\nbucket = "b-1"\n', "either [vault]"),
    ('[s3]\nbucket = "B!"\n', "[s3].bucket = 'B!' is not a valid bucket name"),
    ('[s3]\nbucket = "bkt"\nstorage_class = "COLD"\n', "[s3].storage_class = 'COLD'"),
    ('[s3]\nbucket = "bkt"\nregion = "x"\n', "[s3]: unknown key 'region'"),
    ('[s3]\nbucket = "bkt"\nrestore_days = 0\n', "[s3].restore_days"),
    ('[vault]\ncreate = true\n', "[vault].name is required"),
    ('[vault]\nname = "v"\ncreate = "yes"\n', "[vault].create must be true or false"),
    ('[vault]\nname = "v"\n[upload]\nconcurrency = "4"\n', "[upload].concurrency must be a whole"),
    ('[vault]\nname = "v"\n[upload]\npart_size_mib = 3\n', "[upload].part_size_mib = 3"),
    ('[vault]\nname = "v"\n[upload]\nbandwidth_limit = "fast"\n', "[upload].bandwidth_limit"),
    ('[vault]\nname = "bad name"\n', "not a valid vault name"),
    ('[vault]\nname = "v"\n[aws]\naccess_key_id = "A"\n', "go together"),
    ('[vault]\nname = "v"\n[aws]\nendpoint_url = "ftp://x"\n', "[aws].endpoint_url"),
    ('[vault\nname = "v"\n', "not valid TOML"),
])
def test_bad_configs_name_file_and_key(tmp_path: Path, text: str, fragment: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        config.load(path)
    assert fragment in info.value.message
    assert str(path.name) in info.value.message


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such config file"):
        config.load(tmp_path / "nope.toml")


@pytest.mark.parametrize(("value", "expected"), [
    (1000, 1000), ("512K", 512 * 1024), ("8M", 8 * 2**20), ("1.5G", int(1.5 * 2**30)),
    ("2MiB", 2 * 2**20), (None, None), ("unlimited", None),
])
def test_rates(value: object, expected: int | None) -> None:
    assert config.parse_rate(value, "k") == expected


def test_the_example_config_is_valid() -> None:
    cfg = config.load(Path(__file__).parent.parent / "config.example.toml")
    assert cfg.vault.name == "my-backups" and cfg.upload.concurrency == 4
    assert cfg.schedule.inventory_every == 7 * 86400 and cfg.watch[0].settle_seconds == 10


@pytest.mark.parametrize(("name", "cls", "also"), [
    ("s3", config.S3Section, ""), ("migrate", config.MigrateSection, '[vault]\nname = "v"\n')])
def test_the_example_config_shows_the_optional_sections_with_their_defaults(
        name: str, cls: type, also: str) -> None:
    """A commented-out block ([s3], [migrate]), uncommented, is a valid config
    whose every key has its real default."""
    import dataclasses
    import re
    import tomllib

    text = (Path(__file__).parent.parent / "config.example.toml").read_text()
    block = re.search(rf"^#\[{name}\]\n(?:#.*\n)+", text, re.M)
    assert block is not None
    uncommented = "".join(line[1:] + "\n" for line in block.group(0).splitlines())
    doc = tomllib.loads(also + uncommented)
    parsed = config.from_dict(doc)
    assert getattr(parsed, name) is not None
    for spec in dataclasses.fields(cls):
        assert spec.name in doc[name], f"[{name}] {spec.name} is missing from the example"
        if spec.default is not dataclasses.MISSING:
            assert doc[name][spec.name] == spec.default, spec.name


def test_the_example_config_shows_every_key_with_its_real_default() -> None:
    """Each section's every field appears in config.example.toml: set to its default
    when it has one that is not None, commented out when it is unset by default."""
    import dataclasses
    import re
    import tomllib

    from glacierd import config as config_mod

    example = Path(__file__).parent.parent / "config.example.toml"
    text = example.read_text()
    doc = tomllib.loads(text)
    parsed = config_mod.from_dict(doc, example)
    sections: dict[str, tuple[type, object]] = {
        name: (cls, getattr(parsed, name)) for name, (cls, _) in config_mod.SECTIONS.items()
        if name not in config_mod.OPTIONAL_SECTIONS}  # shown commented out: the next test
    sections["watch"] = (config_mod.WatchSection, parsed.watch[0])
    required = {("vault", "name"), ("watch", "path")}
    for name, (cls, loaded) in sections.items():
        table = doc[name][0] if name == "watch" else doc.get(name, {})
        for spec in dataclasses.fields(cls):
            key = spec.name
            if spec.default is not dataclasses.MISSING:
                default = spec.default
            elif spec.default_factory is not dataclasses.MISSING:
                default = spec.default_factory()
            else:
                assert (name, key) in required, (name, key)
                assert key in table, f"[{name}] {key} (required) is not in the example"
                continue
            if default is None:
                assert key not in table and re.search(rf"^# {key} = ", text, re.M), \
                    f"[{name}] {key} is unset by default: show it commented out"
            else:
                assert key in table, f"[{name}] {key} is missing from the example"
                value = getattr(loaded, key)
                assert value == (default if not isinstance(default, Path)
                                 else example.parent / default), (name, key, value, default)


def test_encryption_keys_are_checked_naming_the_key_or_file(tmp_path: Path) -> None:
    from glacierd import age, wiring
    from glacierd.errors import ConfigError

    identity, recipient = age.generate_identity()
    (tmp_path / "id.txt").write_text(f"# created today\n{identity}\n")
    (tmp_path / "r.txt").write_text(f"# team\n{recipient}\nage1notakey\n")

    def load(body: str) -> config.Config:
        cfg = tmp_path / "c.toml"
        cfg.write_text('[vault]\nname = "v"\n[encryption]\n' + body)
        return config.load(cfg)

    keys = wiring.encryption(load('identity_file = "id.txt"\n'))
    assert keys is not None and keys.can_decrypt
    assert keys.recipients == (age.parse_recipient(recipient),), "its own recipient"
    with pytest.raises(ConfigError, match=r"r\.txt: line 3"):
        wiring.encryption(load('recipients_file = "r.txt"\n'))
    with pytest.raises(ConfigError, match=r"recipients\[0\]"):
        wiring.encryption(load('recipients = ["age1qqqq"]\n'))
    with pytest.raises(ConfigError, match=r"identity_file = .*missing.txt.*cannot be read"):
        wiring.encryption(load('identity_file = "missing.txt"\n'))
    with pytest.raises(ConfigError, match="not an age recipient"):
        load('recipients = ["ssh-ed25519 AAAA"]\n')
    with pytest.raises(ConfigError, match="give recipients"):
        load("")
    (tmp_path / "bad-id.txt").write_text("AGE-SECRET-KEY-1NOTAKEY\n")
    with pytest.raises(ConfigError) as caught:
        wiring.encryption(load('identity_file = "bad-id.txt"\n'))
    assert "NOTAKEY" not in str(caught.value), "no part of a secret in a message"


@pytest.mark.parametrize(("name", "cls"), [("encryption", config.EncryptionSection),
                                          ("http", config.HttpSection)])
def test_the_example_config_shows_the_sections_without_defaults(name: str, cls: type) -> None:
    """A commented-out block whose keys have no TOML-writable default ([encryption],
    [http]), uncommented, is valid, names every key and keeps secrets out of reprs."""
    import dataclasses
    import re
    import tomllib

    text = (Path(__file__).parent.parent / "config.example.toml").read_text()
    block = re.search(rf"^#\[{name}\]\n(?:#.*\n)+", text, re.M)
    assert block is not None
    doc = tomllib.loads('[vault]\nname = "v"\n' + "".join(
        line[1:] + "\n" for line in block.group(0).splitlines()))
    parsed = config.from_dict(doc)
    assert getattr(parsed, name) is not None
    assert {f.name for f in dataclasses.fields(cls)} == set(doc[name])
    assert "a long random string" not in repr(parsed), "a token stays out of reprs"


def test_state_url_is_another_name_for_database_url() -> None:
    from glacierd import config as config_mod

    base = {"vault": {"name": "v"}}
    pg = "postgresql+psycopg://glacierd:secret@db/glacierd"
    assert config_mod.from_dict({**base, "state": {"url": pg}}).database_url == pg
    assert config_mod.from_dict({**base, "state": {"database_url": pg}}).database_url == pg
    with pytest.raises(ConfigError, match="url or database_url"):
        config_mod.from_dict({**base, "state": {"url": pg, "database_url": pg}})
