"""Current digest of an image tag, read through the OCI distribution API."""

from __future__ import annotations

import hashlib
import re

import httpx

from .gitrefs import SourceError

# Index/manifest-list types first: a multi-arch tag then resolves to the index
# digest, which pins every platform at once.
MANIFEST_TYPES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
)
ACCEPT = ", ".join(MANIFEST_TYPES)

# Docker Hub serves its API from another host than the one in image names.
_API_HOSTS = {"docker.io": "registry-1.docker.io"}


def split_image(image: str) -> tuple[str, str]:
    """`registry/name` -> (registry host, repository name)."""
    host, sep, name = image.partition("/")
    if not sep or ("." not in host and ":" not in host and host != "localhost"):
        host, name = "docker.io", image  # Docker's short form: `postgres`
    if host == "docker.io" and "/" not in name:
        name = f"library/{name}"
    return host, name


def _challenge(header: str) -> dict[str, str]:
    """Parameters of a `WWW-Authenticate: Bearer k="v",...` challenge."""
    if not header.lower().startswith("bearer "):
        return {}
    return dict(re.findall(r'(\w+)="([^"]*)"', header))


def _anonymous_token(client: httpx.Client, header: str, name: str) -> str:
    params = _challenge(header)
    realm = params.pop("realm", "")
    if not realm:
        raise SourceError(f"registry wants non-bearer authentication ({header or 'no challenge'})")
    params.setdefault("scope", f"repository:{name}:pull")
    reply = client.get(realm, params=params)
    if reply.status_code != 200:
        raise SourceError(f"anonymous token refused by {realm}: HTTP {reply.status_code}")
    body = reply.json()
    token = body.get("token") or body.get("access_token")
    if not isinstance(token, str) or not token:
        raise SourceError(f"token endpoint {realm} returned no token")
    return token


def manifest_url(image: str, tag: str, base: str | None = None) -> str:
    host, name = split_image(image)
    root = base.rstrip("/") if base else f"https://{_API_HOSTS.get(host, host)}"
    return f"{root}/v2/{name}/manifests/{tag}"


def resolve_digest(
    image: str, tag: str, base: str | None = None, timeout: float = 30.0
) -> tuple[str, str]:
    """(digest, media type) the registry serves for image:tag now.

    `base` replaces `https://<registry>` (a local registry in tests)."""
    _, name = split_image(image)
    url = manifest_url(image, tag, base)
    headers = {"Accept": ACCEPT}
    try:
        with httpx.Client(timeout=timeout, follow_redirects=True) as client:
            # HEAD first: it does not count against Docker Hub's pull limit.
            reply = client.head(url, headers=headers)
            if reply.status_code == 401:
                challenge = reply.headers.get("www-authenticate", "")
                headers["Authorization"] = f"Bearer {_anonymous_token(client, challenge, name)}"
                reply = client.head(url, headers=headers)
            digest = reply.headers.get("docker-content-digest", "")
            if reply.status_code == 200 and not digest:
                reply = client.get(url, headers=headers)
                if reply.status_code == 200:
                    digest = "sha256:" + hashlib.sha256(reply.content).hexdigest()
    except httpx.HTTPError as exc:
        raise SourceError(f"{url}: {type(exc).__name__}: {exc}") from exc
    if reply.status_code == 404:
        raise SourceError(f"{url}: tag not found (HTTP 404)")
    if reply.status_code != 200:
        raise SourceError(f"{url}: HTTP {reply.status_code}")
    if not re.fullmatch(r"sha256:[0-9a-f]{64}", digest):
        raise SourceError(f"{url}: unusable digest {digest!r}")
    media_type = reply.headers.get("content-type", "").split(";")[0].strip()
    return digest, media_type
