"""The weights folder: manifest and recognition, what a run needs, checking, and fetching.

- :mod:`.manifest`: ``vacelive-weights.toml`` (role -> file) and :meth:`WeightsManifest.open`,
  which falls back to recognising a folder's files (:mod:`.recognise`);
- :mod:`.needs`: the roles a run's settings need, checked before anything heavy loads;
- :mod:`.check`: ``vacelive weights check``, each file compared key by key with its model;
- :mod:`.sets` and :mod:`.fetch`: ``vacelive weights fetch``, the only code that downloads.
"""

from .check import CHECKERS, module_shapes, weights_check
from .manifest import KNOWN_ROLES, MANIFEST_NAME, WeightFileMissing, WeightsFolderError, WeightsManifest
from .needs import MissingWeights, Need, preflight, run_needs

__all__ = [
    "CHECKERS",
    "KNOWN_ROLES",
    "MANIFEST_NAME",
    "MissingWeights",
    "Need",
    "WeightFileMissing",
    "WeightsFolderError",
    "WeightsManifest",
    "module_shapes",
    "preflight",
    "run_needs",
    "weights_check",
]
