"""kubectl presents a valid Google token to the cluster through gke-gcloud-auth-plugin (401 guidance).

An HTTP 401 (Unauthorized) from the cluster's API server, typically when running kubectl from a
workstation, has one of two causes: the gke-gcloud-auth-plugin credential plugin is not installed
or not configured (kubectl 1.25 and later requires it), or the account lacks permission to connect
to the API server. The bot cannot see the asker's workstation, so this finding gives the seed's
procedure with the cluster's real name, location, project and endpoint filled in: install the
plugin and fetch credentials; bypass kubectl and the plugin with curl (a valid token that curl gets
through means the plugin is at fault; a 401 Status means missing permissions); and, only with
kubectl 1.24 or older, work without the plugin. It never shows the CA certificate or any token.
"""
from __future__ import annotations

from checks.gateway import ApiError
from checks.i18n import N_, _

ID = "gke/auth-client"
TITLE = N_("kubectl authenticates with gke-gcloud-auth-plugin")
DOC_URL = "https://cloud.google.com/kubernetes-engine/docs/troubleshooting/4xx-errors"
COMMANDS = ("why-401",)
ORDER = 30
SEED = "001 問題: 認証 / 認可エラー"
CLUSTER_LEVEL = False  # guidance about the asker's own client: not part of doctor

STATUS_401 = ('{"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", '
              '"message": "Unauthorized", "reason": "Unauthorized", "code": 401}')


def run(ctx):
    name, flags = ctx.ref.name, f"--location={ctx.ref.location} --project={ctx.ref.project}"
    describe = f"gcloud container clusters describe {name} \\\n    {flags}"
    try:
        endpoint = ctx.gw.cluster(ctx.ref).endpoint
    except ApiError:  # the other checks report it; the procedure still works without it
        endpoint = ""
    apiserver = f"https://{endpoint}" if endpoint else f'https://$({describe} --format "value(endpoint)")'
    creds = f"gcloud container clusters get-credentials {name} \\\n    {flags}"
    plugin = f"gcloud components install gke-gcloud-auth-plugin\ngke-gcloud-auth-plugin --version\n{creds}\nkubectl cluster-info"
    curl = (f"APISERVER={apiserver}\nTOKEN=$(gcloud auth print-access-token)\n"
            "curl https://oauth2.googleapis.com/tokeninfo?access_token=$TOKEN\n"
            f'{describe} \\\n    --format "value(masterAuth.clusterCaCertificate)" | \\\n    base64 -d > /tmp/ca.crt\n'
            'curl -s -X GET "${APISERVER}/api/v1/namespaces" \\\n    --header "Authorization: Bearer $TOKEN" \\\n'
            "    --cacert /tmp/ca.crt")
    legacy = ("curl -LO https://dl.k8s.io/release/v1.24.0/bin/linux/amd64/kubectl\n"
              "echo 'export USE_GKE_GCLOUD_AUTH_PLUGIN=False' >> ~/.bashrc   # macOS: ~/.bash_profile\n"
              f"source ~/.bashrc\n{creds}\nkubectl cluster-info")
    remedy = _(
        "*1. The plugin.* kubectl 1.25 and later needs `gke-gcloud-auth-plugin` to fetch a token from gcloud:\n"
        "```\n{plugin}\n```\n"
        "*2. Bypass kubectl and the plugin with curl:*\n```\n{curl}\n```\n"
        "With a valid token, tokeninfo answers with the token's details (otherwise run `gcloud auth login`). "
        "If curl lists the namespaces, your account is fine and the plugin or kubeconfig is the cause: see step 1, "
        "or step 3. If curl answers `{status}`, the API server did not accept your credentials: you lack the "
        "permissions to access cluster `{cluster}`; ask an administrator (see gke/principal-cluster-access).\n"
        "*3. Without the plugin* (only with kubectl 1.24 or older):\n```\n{legacy}\n```\n"
        "If that still ends in 401, check your permissions and repeat the step that failed.").format(
        plugin=plugin, curl=curl, status=STATUS_401, cluster=name, legacy=legacy)
    return ctx.skip(
        _("A 401 (Unauthorized) from the API server of `{cluster}` means it did not accept the credentials your client "
          "sent: either `gke-gcloud-auth-plugin` is not installed or configured, or your account lacks permission to "
          "connect. The bot cannot see your workstation; these steps tell the two apart.").format(cluster=name),
        remedy=remedy)
