"""moto, patched where it differs from AWS: one module per AWS service, as moto itself is laid out.

Each module lists its changes as ``PATCHES`` (:class:`~taskrail.local.services.patching.Patch`), each declaring
next to its code the moto internals it relies on. :mod:`taskrail.local.services.registry` installs, uninstalls
and checks all of them.
"""
