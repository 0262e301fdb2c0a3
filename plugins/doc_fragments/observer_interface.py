# Copyright: qts.observer contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The option that says how a module reads the Observer's records and log."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  interface:
    description:
      - How the Observer's records and log are read, as resolved by the
        P(qts.observer.observer_interface#filter) filter from the stress role's
        C(stress_observer_interface) (record files, field paths as key lists, log patterns,
        decision fields, metrics file).
      - Default the reference Observer's (C(plugins/module_utils/observer_interface.py)).
    type: dict
"""
