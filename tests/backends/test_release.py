"""Reading the installed release's settings ConfigMap, and merging the sweep file's overrides."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from kubernetes import client

from tests.backends.k8s_fake import FakeApiServer
from xstilts.backends.release import load_release_settings
from xstilts.errors import ConfigError
from xstilts.spec.cluster import ClusterSettings, merge_settings

LABELS = {"app.kubernetes.io/name": "xstilts", "xstilts.io/settings": "true"}


def settings_map(name: str, settings: dict, release: str | None = None) -> dict:
    labels = {**LABELS, **({"app.kubernetes.io/instance": release} if release else {})}
    return {"metadata": {"name": name, "labels": labels}, "data": {"settings.yaml": yaml.safe_dump(settings)}}


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[FakeApiServer]:
    """A fake API server that the current kubeconfig context (namespace xs) points at."""
    with FakeApiServer() as srv:
        kubeconfig = tmp_path / "kubeconfig"
        kubeconfig.write_text(
            yaml.safe_dump(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "current-context": "test",
                    "clusters": [{"name": "fake", "cluster": {"server": srv.url}}],
                    "users": [{"name": "me", "user": {"token": "not-a-secret"}}],
                    "contexts": [
                        {"name": "test", "context": {"cluster": "fake", "user": "me", "namespace": "xs"}}
                    ],
                }
            )
        )
        monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
        monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
        monkeypatch.delenv("XSTILTS_RELEASE", raising=False)
        yield srv


def test_no_cluster_configured_gives_none(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing"))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    assert load_release_settings(None) is None


def test_reads_the_release_in_the_current_namespace(server: FakeApiServer) -> None:
    server.cluster.put(
        "configmaps",
        settings_map(
            "xstilts-settings", {"namespace": "xs", "image": "t:1", "s3": {"secretName": "xstilts-s3"}}
        ),
    )
    server.cluster.put("configmaps", {"metadata": {"name": "unrelated", "labels": {}}, "data": {}})
    settings = load_release_settings(None)
    assert settings is not None and settings.image == "t:1" and settings.s3.secret_name == "xstilts-s3"
    (call,) = server.cluster.calls("GET", "configmaps")
    assert call.path == "/api/v1/namespaces/xs/configmaps"
    assert call.query["labelSelector"] == "app.kubernetes.io/name=xstilts,xstilts.io/settings=true"


def test_several_releases(server: FakeApiServer, monkeypatch: pytest.MonkeyPatch) -> None:
    server.cluster.put("configmaps", settings_map("a-xstilts-settings", {"image": "a:1"}, release="a"))
    server.cluster.put("configmaps", settings_map("b-xstilts-settings", {"image": "b:1"}, release="b"))
    with pytest.raises(ConfigError, match="several xstilts releases in namespace xs.*XSTILTS_RELEASE"):
        load_release_settings(None)
    monkeypatch.setenv("XSTILTS_RELEASE", "b")
    assert load_release_settings(None).image == "b:1"  # type: ignore[union-attr]
    monkeypatch.delenv("XSTILTS_RELEASE")
    server.cluster.put("configmaps", settings_map("xstilts-settings", {"image": "default:1"}))
    assert load_release_settings(None).image == "default:1"  # type: ignore[union-attr]


def test_cluster_without_the_chart_gives_defaults_in_the_namespace(
    server: FakeApiServer, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        settings = load_release_settings("other")
    assert settings == ClusterSettings(namespace="other")
    assert "no xstilts settings ConfigMap" in caplog.text


def test_invalid_settings_name_the_config_map(server: FakeApiServer) -> None:
    server.cluster.put("configmaps", settings_map("xstilts-settings", {"imagee": "typo"}))
    with pytest.raises(ConfigError, match="configmap/xstilts-settings"):
        load_release_settings(None)


def test_an_api_object_can_be_passed(server: FakeApiServer) -> None:
    server.cluster.put("configmaps", settings_map("xstilts-settings", {"image": "t:2"}), namespace="team")
    api = client.CoreV1Api(client.ApiClient(client.Configuration(host=server.url)))
    assert load_release_settings("team", api=api).image == "t:2"  # type: ignore[union-attr]


def test_sweep_overrides_win_and_merge_deeply() -> None:
    base = ClusterSettings.model_validate(
        {
            "namespace": "xs",
            "image": "t:1",
            "s3": {"secretName": "xstilts-s3", "endpointUrl": "http://s3"},
            "presets": {"target": {"cpu": "8", "memory": "64Gi", "gpu": 1}},
            "tolerations": [{"key": "a"}],
        }
    )
    merged = merge_settings(
        base,
        {
            "image": "t:2",
            "s3": {"region": "eu"},
            "presets": {"target": {"gpu": 8}},
            "tolerations": [],
            "node_selector": {"pool": "a100"},
        },
    )
    assert merged.image == "t:2" and merged.namespace == "xs"
    assert (merged.s3.secret_name, merged.s3.endpoint_url, merged.s3.region) == (
        "xstilts-s3",
        "http://s3",
        "eu",
    )
    target = merged.presets["target"]
    assert (target.cpu, target.memory, target.gpu) == ("8", "64Gi", 8)
    assert merged.tolerations == [] and merged.node_selector == {"pool": "a100"}
    assert merge_settings(None, {"namespace": "n"}) == ClusterSettings(namespace="n")
    with pytest.raises(ConfigError, match="kubernetes"):
        merge_settings(base, {"backoffLimit": "many"})


def test_the_sweeps_data_volumes_merge_with_the_releases_by_name() -> None:
    base = ClusterSettings.model_validate(
        {
            "dataVolumes": [
                {"name": "corpora", "mountPath": "/data", "claimName": "corpora"},
                {"name": "bucc", "mountPath": "/bucc", "claimName": "bucc"},
            ]
        }
    )
    merged = merge_settings(
        base,
        {
            "dataVolumes": [
                {"name": "bucc", "mountPath": "/bucc", "claimName": "bucc-2024"},  # replaces the release's
                {"name": "ccg", "mountPath": "/ccg", "hostPath": "/srv/ccg"},  # added
            ]
        },
    )
    assert [(v.name, v.claim_name or v.host_path) for v in merged.data_volumes] == [
        ("corpora", "corpora"),
        ("bucc", "bucc-2024"),
        ("ccg", "/srv/ccg"),
    ]
    assert merge_settings(base, {"image": "t:2"}).data_volumes == base.data_volumes
    assert [
        v.name
        for v in merge_settings(
            None, {"dataVolumes": [{"name": "a", "mountPath": "/a", "claimName": "a"}]}
        ).data_volumes
    ] == ["a"]


def test_a_data_volume_name_given_twice_is_refused() -> None:
    twice = [
        {"name": "c", "mountPath": "/data", "claimName": "c"},
        {"name": "c", "mountPath": "/more", "claimName": "d"},
    ]
    with pytest.raises(ConfigError, match="dataVolumes.*'c' is given twice"):
        merge_settings(None, {"dataVolumes": twice})
