"""gateway.rescore: the national rescoring of every household with a model release
(``sijill rsu rescore``).

Owns: the rescoring jobs and their batches (``tables``), planning them in registration order
(``planner``), computing a batch in a scoring process (``scorer``: reads only), storing
computed batches in one writer (``writer``), and running the processes (``run``).

May import: ``rsu`` (the household register: its tables to read a batch's households, and
:meth:`rsu.HouseholdRegister.record_scores`, through which every model version is noted),
``identity``, ``vault`` (the public ``Vault`` API: ``score_compute``/``score_store``),
``audit`` (the log and its prepared entries), ``storekit``, and the gateway's wiring
(``gateway.db``, ``gateway.keys``, ``gateway.score_audit``, ``gateway.settings``).

Must never: write the register's household table itself (the register notes scores);
import the command line (``gateway.cli``: it imports this room); log a score, a declared value
or an IDCS; audit a household twice in one job.
"""

from gateway.rescore.planner import RescoreError, load_models
from gateway.rescore.run import RescoreReport, run_rescore

__all__ = ["RescoreError", "RescoreReport", "load_models", "run_rescore"]
