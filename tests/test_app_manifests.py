"""The two Slack app manifests (Socket Mode: app-manifest.yaml; HTTP mode: app-manifest.http.yaml)
describe the same app, and that app is the one the bot's listeners (bot/) serve."""
from __future__ import annotations

import copy
import re
from pathlib import Path

import yaml

from tests.deploy import DEPLOY, env_file

ROOT = Path(__file__).resolve().parents[1]
SOCKET = yaml.safe_load((ROOT / "app-manifest.yaml").read_text())
HTTP = yaml.safe_load((ROOT / "app-manifest.http.yaml").read_text())


def _without_urls(manifest: dict) -> dict:
    m = copy.deepcopy(manifest)
    for cmd in m["features"].get("slash_commands") or []:
        cmd.pop("url", None)
    for sc in m["features"].get("shortcuts") or []:
        sc.pop("url", None)
    m["settings"].get("event_subscriptions", {}).pop("request_url", None)
    m["settings"].get("interactivity", {}).pop("request_url", None)
    m["settings"]["interactivity"].pop("message_menu_options_url", None)
    m["settings"].pop("socket_mode_enabled")
    return m


def _urls(manifest: dict) -> list[str]:
    f, s = manifest["features"], manifest["settings"]
    return ([c.get("url") for c in f.get("slash_commands") or []] + [s["event_subscriptions"].get("request_url"),
            s["interactivity"].get("request_url"), s["interactivity"].get("message_menu_options_url")])


def test_same_app_in_both_modes():
    """Same scopes, commands, events, shortcuts, interactivity: only the transport differs."""
    assert _without_urls(SOCKET) == _without_urls(HTTP)
    assert SOCKET["settings"]["socket_mode_enabled"] is True
    assert HTTP["settings"]["socket_mode_enabled"] is False


def test_http_mode_sends_everything_to_the_ingress_path():
    domain = env_file(DEPLOY / "overlays" / "http" / "values.env")["DOMAIN"]
    assert set(_urls(HTTP)) == {f"https://{domain}/slack/events"}, "the README's sed of DOMAIN must reach every URL"
    assert set(_urls(SOCKET)) == {None}, "Socket Mode needs no request URL"


def test_the_manifest_declares_what_the_app_listens_to():
    source = "\n".join(p.read_text() for p in sorted((ROOT / "bot").rglob("*.py")))  # the listeners, wherever
    commands = set(re.findall(r'app\.command\("([^"]+)"\)', source))
    events = set(re.findall(r'app\.event\("([^"]+)"\)', source))
    shortcuts = set(re.findall(r'app\.shortcut\("([^"]+)"\)', source))
    for manifest in (SOCKET, HTTP):
        assert {c["command"] for c in manifest["features"]["slash_commands"]} == commands
        assert set(manifest["settings"]["event_subscriptions"]["bot_events"]) == events
        assert {s["callback_id"] for s in manifest["features"].get("shortcuts") or []} == shortcuts
        assert manifest["settings"]["interactivity"]["is_enabled"] is ("app.action(" in source or bool(shortcuts))
        scopes = set(manifest["oauth_config"]["scopes"]["bot"])
        assert "commands" in scopes and ("app_mentions:read" in scopes) == ("app_mention" in events)
