from checks.engine import Context, diagnose
from checks.fixes import execute
from checks.model import Remediation, Status
from checks.registry import for_command
from tests.helpers import GKE1, gateway, one
from tests.test_check_ingress_fixtures import REF, check

ID = "ingress/http-lb-addon"
PARAMS = {"project": GKE1, "location": "europe-west4-a", "cluster": "gke1"}


def test_recorded_gke1_has_http_load_balancing_off(google, settings):
    f = one(check(ID, settings), Status.FAIL)
    assert "`l7-default-backend`" in f.detail and "nothing logs why" in f.detail
    assert ("gcloud container clusters update gke1 --location=europe-west4-a --project=gcpdiag-gke1-aaaa \\\n"
            "    --update-addons=HttpLoadBalancing=ENABLED") in f.remedy
    assert "addonsConfig.httpLoadBalancing.disabled: true" in f.evidence
    assert f.remediation == Remediation("enable_http_load_balancing", "Enable HTTP load balancing",
                                        f.remediation.summary, PARAMS)
    assert "gke1" in f.remediation.summary
    assert f.doc_url == "https://cloud.google.com/kubernetes-engine/docs/how-to/load-balance-ingress"


def test_enabled_addon_is_ok(google, settings):
    google.cluster(GKE1, "gke1")["addonsConfig"]["httpLoadBalancing"] = {}
    f = one(check(ID, settings), Status.OK)
    assert f.remediation is None and "enabled on `gke1`" in f.detail


def test_runs_first_in_ingress_and_in_doctor():
    assert for_command("ingress")[0].id == ID
    assert ID in {c.id for c in for_command("doctor")}
    assert not {c.id for c in for_command("doctor")} & {c.id for c in for_command("ingress")[1:]}


def test_the_proposed_remediation_fixes_what_the_check_found(google, settings):
    f = one(check(ID, settings), Status.FAIL)
    progress = []
    outcome = execute(gateway(settings), f.remediation.kind, f.remediation.params, progress.append, poll=0.01)
    assert outcome.ok, outcome.message
    assert google.cluster(GKE1, "gke1")["addonsConfig"]["httpLoadBalancing"].get("disabled") in (False, None)
    one(check(ID, settings), Status.OK)


def test_unreachable_api_server_is_an_error_but_the_google_side_still_answers(google, settings):
    # gke1 is not served: its recorded endpoint and CA lead nowhere, so every Kubernetes read fails.
    report = diagnose("ingress", Context(gateway(settings), REF, "ingress"))
    by_id = {f.id: f for f in report.findings}
    assert by_id[ID].status is Status.FAIL
    assert by_id["ingress/address"].status is Status.ERROR
    assert "ingress/firewall" in by_id and by_id["ingress/firewall"].status is not Status.ERROR
