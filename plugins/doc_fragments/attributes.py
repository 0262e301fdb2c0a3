# Copyright: qts.observer contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The attributes every module of the collection documents, as community.general does: the
descriptions here, each module's support (and its details) in the module."""

from __future__ import annotations


class ModuleDocFragment:
    # Every module: check and diff mode.
    DOCUMENTATION = r"""
options: {}
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
"""

    # A module that runs on POSIX hosts (all of them).
    PLATFORM = r"""
options: {}
attributes:
  platform:
    description: Target OS/families that can be operated against.
    support: full
    platforms: posix
"""

    # A module that can run as an async task.
    ASYNC = r"""
options: {}
attributes:
  async:
    description: Supports being used with the C(async) keyword.
"""

    # A module with an action plugin that runs (part of) it on the controller.
    ACTION = r"""
options: {}
attributes:
  action:
    description: Indicates this has a corresponding action plugin so some parts of the options can be executed on the controller.
"""

    # A module that only reads what the host holds: the same result in check mode.
    READ_ONLY = r"""
options: {}
attributes:
  check_mode:
    support: full
    details: Reads only; the same figures are returned in check mode.
  diff_mode:
    support: none
"""
