"""``vacelive weights fetch``: download a named set's files into a weights folder and write its manifest.

Per file: ask the server for its size (one HEAD); a file already there with that size is kept;
otherwise it is downloaded (Hugging Face files through ``huggingface_hub``, which shows progress,
resumes within a call and honours ``HF_ENDPOINT`` / ``HF_TOKEN`` / ``HF_HOME``; other files over
plain HTTPS) into a temporary file that is renamed into place only once complete and of the
right size. A failure stops the fetch with one line naming the file, the URL and the reason;
no half-written file is ever left under a final name. ``vacelive run`` never calls this.
"""

from __future__ import annotations

import os
import shutil
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from .manifest import MANIFEST_NAME, WeightsManifest
from .sets import DEFAULT_SET, SETS, RemoteFile, RoleSource, human_size, plan

HTTP_TIMEOUT_S = 30.0
PARTIAL_DIR = ".cache/vacelive"
"""Where non-hub downloads are written before they are renamed into place (inside the folder,
so the rename never crosses file systems); ``huggingface_hub`` keeps its own under ``.cache/huggingface``."""


class FetchError(RuntimeError):
    """A download failed; the message is one line naming the file, the URL and what went wrong."""


def _endpoint() -> str:
    return os.environ.get("HF_ENDPOINT", "").rstrip("/") or "https://huggingface.co"


def source_url(remote: RemoteFile) -> str:
    """The URL a file is downloaded from."""
    if remote.repo:
        from huggingface_hub import hf_hub_url

        return hf_hub_url(remote.repo, remote.path, revision="main", endpoint=_endpoint())
    return remote.url


def _reason(err: BaseException) -> str:
    text = " ".join(str(err).split()) or type(err).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def remote_size(remote: RemoteFile) -> int:
    """The file's size on the server, from one HEAD request."""
    url = source_url(remote)
    try:
        if remote.repo:
            from huggingface_hub import get_hf_file_metadata

            size = get_hf_file_metadata(url, endpoint=_endpoint()).size
        else:
            request = urllib.request.Request(url, method="HEAD")
            with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_S) as response:
                size = int(response.headers.get("Content-Length", -1))
    except Exception as err:  # every client error becomes one line
        raise FetchError(f"{remote.local}: cannot reach {url}: {_reason(err)}") from None
    if size is None or size < 0:
        raise FetchError(f"{remote.local}: {url} did not say the file's size")
    return size


def _download_hub(remote: RemoteFile, folder: Path) -> Path:
    from huggingface_hub import hf_hub_download

    local_dir = folder / remote.local.removesuffix(remote.path)
    return Path(hf_hub_download(remote.repo, remote.path, revision="main", local_dir=local_dir,
                                endpoint=_endpoint()))


def _download_url(remote: RemoteFile, folder: Path, size: int) -> Path:
    from tqdm.auto import tqdm

    target = folder / remote.local
    partial = folder / PARTIAL_DIR / (remote.local.replace("/", "__") + ".incomplete")
    partial.parent.mkdir(parents=True, exist_ok=True)
    try:
        with urllib.request.urlopen(remote.url, timeout=HTTP_TIMEOUT_S) as response, \
                open(partial, "wb") as out, \
                tqdm(total=size, unit="B", unit_scale=True, desc=remote.local, leave=False) as bar:
            while chunk := response.read(1 << 20):
                out.write(chunk)
                bar.update(len(chunk))
        received = partial.stat().st_size
        if received != size:
            raise FetchError(f"{remote.local}: {remote.url}: got {received} bytes, expected {size}")
        target.parent.mkdir(parents=True, exist_ok=True)
        partial.replace(target)
        return target
    finally:
        partial.unlink(missing_ok=True)


def fetch_file(remote: RemoteFile, folder: Path, log: Callable[[str], None] = print) -> bool:
    """Make ``folder / remote.local`` the complete file; True if it was downloaded, False if kept."""
    size = remote_size(remote)
    target = folder / remote.local
    if target.is_file() and target.stat().st_size == size:
        log(f"  {remote.local}: present ({human_size(size)})")
        return False
    url = source_url(remote)
    log(f"  {remote.local}: downloading {human_size(size)} from {url}")
    try:
        path = _download_hub(remote, folder) if remote.repo else _download_url(remote, folder, size)
    except FetchError:
        raise
    except Exception as err:
        raise FetchError(f"{remote.local}: download from {url} failed: {_reason(err)}") from None
    if path.stat().st_size != size:
        path.unlink()
        raise FetchError(f"{remote.local}: {url}: the downloaded file has the wrong size (removed)")
    return True


def list_sets(log: Callable[[str], None] = print) -> None:
    """Print every set and add-on with its files, approximate sizes and licences."""
    from .sets import ADD_ONS

    def describe(source: RoleSource) -> None:
        nc = "  NON-COMMERCIAL" if source.non_commercial else ""
        log(f"    {source.role:9s} {source.entry}  ~{human_size(source.approx_bytes)}  [{source.licence}]{nc}")
        for remote in source.files:
            log(f"              <- {source_url(remote)}")

    for weight_set in SETS.values():
        default = " (default)" if weight_set.name == DEFAULT_SET else ""
        total = sum(r.approx_bytes for r in weight_set.roles)
        log(f"{weight_set.name}{default}: {weight_set.description}, ~{human_size(total)}")
        for source in weight_set.roles:
            describe(source)
    log("add-on roles (any set, with --with ROLE or --only ROLE):")
    for source in ADD_ONS.values():
        describe(source)


def fetch(directory: str | Path, set_name: str = DEFAULT_SET, *, only: list[str] | None = None,
          extra: list[str] | None = None, log: Callable[[str], None] = print) -> WeightsManifest:
    """Download the planned roles into ``directory`` and write or update its manifest.

    Raises ``ValueError`` (unknown set or role) or :class:`FetchError` (one line).
    """
    sources = plan(set_name, only, extra)
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    manifest = WeightsManifest.load(folder) if (folder / MANIFEST_NAME).is_file() else WeightsManifest(folder)
    for source in sources:
        nc = " - NON-COMMERCIAL use only" if source.non_commercial else ""
        log(f"{source.role}: {source.entry}  licence: {source.licence}{nc}")
        for remote in source.files:
            fetch_file(remote, folder, log)
        manifest.files[source.role] = source.entry
    weight_set = SETS[set_name]
    roles = {s.role for s in sources}
    if "dit" in roles:
        manifest.set_name = set_name
        manifest.dit_weights = weight_set.settings.get("dit_weights")  # type: ignore[assignment]
    if "lora" in roles:
        manifest.lora_alpha = weight_set.settings.get("lora_alpha")  # type: ignore[assignment]
    saved = manifest.save()
    shutil.rmtree(folder / PARTIAL_DIR, ignore_errors=True)
    log(f"wrote {saved}")
    return manifest
