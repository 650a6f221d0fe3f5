"""The performance state and the one thread that changes it (see `ravemap.session.core`).

Modules, each stating which thread calls what: `core` (the session thread, dispatch, inputs,
targets, record, run, predict), `jobs` (work on other threads, the loader queue), `keeper` (the
mapping, its lock, saves, switches, recovery), `training`, `engine` (engine commands), `view`
(the immutable snapshot other threads read) and `outcomes` (what collaborators hand back).
"""

from ravemap.session.core import Session
from ravemap.session.engine import LOOP_SUFFIXES, MODEL_SUFFIXES
from ravemap.session.keeper import check_fits, new_mapping, open_mapping
from ravemap.session.outcomes import DEFERRED, CommandError
from ravemap.session.view import SessionView

__all__ = ["DEFERRED", "LOOP_SUFFIXES", "MODEL_SUFFIXES", "CommandError", "Session", "SessionView", "check_fits",
           "new_mapping", "open_mapping"]
