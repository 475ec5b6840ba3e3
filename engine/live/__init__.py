"""The live loop's stages, one module each; :mod:`engine.loop` wires them into an :class:`Engine`.

source (:mod:`.source`) -> annotate (:mod:`.annotate`) -> assemble (:mod:`.assemble`) ->
generate (:mod:`.generate`) -> publish (:mod:`.publish`, with the sink and preview writers);
:mod:`.queues` holds what flows between them, :mod:`.stage` their common thread.
"""
