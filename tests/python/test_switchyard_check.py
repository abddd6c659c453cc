"""`switchyard check -c FILE`: validates without starting; problems come with file:line:col."""

import subprocess

from conftest import write_config


def check(binary, path):
    return subprocess.run([str(binary), "check", "-c", str(path)], capture_output=True, text=True, timeout=30)


def test_check_accepts_the_test_config(proxy):
    r = check(proxy.binary, proxy.config_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "OK" in r.stdout


def test_check_reports_unknown_key_with_position(proxy, tmp_path):
    cfg = tmp_path / "bad.yaml"
    write_config(cfg, 1, 2, 3)
    text = cfg.read_text().replace("    users_refresh_interval: 1s\n", "    users_refresh_intervall: 1s\n")
    cfg.write_text(text)
    line = next(i for i, l in enumerate(text.splitlines(), 1) if "users_refresh_intervall" in l)
    r = check(proxy.binary, cfg)
    assert r.returncode != 0
    out = r.stdout + r.stderr
    assert f"{cfg}:{line}:5" in out, out
    assert "users_refresh_intervall" in out, out


def test_check_reports_bad_value_and_unknown_server(proxy, tmp_path):
    cfg = tmp_path / "bad2.yaml"
    write_config(cfg, 1, 2, 3)
    text = cfg.read_text().replace("router_options: replica", "router_options: sideways")
    text = text.replace("servers: [db1, db2, db3]\n    user: switchyard\n    password: switchyard\n    options: { router_options: running }",
                        "servers: [db1, db9]\n    user: switchyard\n    password: switchyard\n    options: { router_options: running }")
    cfg.write_text(text)
    r = check(proxy.binary, cfg)
    assert r.returncode != 0
    out = r.stdout + r.stderr
    bad_line = next(i for i, l in enumerate(text.splitlines(), 1) if "sideways" in l)
    srv_line = next(i for i, l in enumerate(text.splitlines(), 1) if "db9" in l)
    assert f"{cfg}:{bad_line}:" in out and "router_options" in out, out
    assert f"{cfg}:{srv_line}:" in out and "db9" in out, out


def test_check_reports_duplicate_listener_address(proxy, tmp_path):
    cfg = tmp_path / "bad3.yaml"
    write_config(cfg, 4006, 4006, 4007)
    r = check(proxy.binary, cfg)
    assert r.returncode != 0, r.stdout
    assert "4006" in r.stdout + r.stderr


def test_start_with_bad_config_does_not_start(proxy, tmp_path):
    cfg = tmp_path / "bad4.yaml"
    cfg.write_text("servers: []\nlisteners: nope\n")
    r = subprocess.run([str(proxy.binary), "-c", str(cfg)], capture_output=True, text=True, timeout=30)
    assert r.returncode != 0
    assert str(cfg) in r.stderr
