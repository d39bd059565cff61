"""Launching under MPI: how many processes the launcher started and which one this is
(read from its variables, no MPI call), the mpiexec command for tests and benchmarks,
and mpi4py itself, imported only when a group is made."""
import os
import shutil
import sys

#: Variables that MPI launchers set in every process they start, holding the number of
#: processes: Open MPI, MPICH and Intel MPI (Hydra's PMI), MVAPICH; MPICH's local count last.
SIZE_VARIABLES = ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "MV2_COMM_WORLD_SIZE", "MPI_LOCALNRANKS")
#: Those holding this process' rank in the whole launch (PMIx's too; never a rank on the node).
RANK_VARIABLES = ("OMPI_COMM_WORLD_RANK", "PMI_RANK", "MV2_COMM_WORLD_RANK", "PMIX_RANK")


#: Seconds a rank that learned of rank 0's failure (RootFailed) lets rank 0 report it
#: before ending: the launcher ends the job, and may drop rank 0's message, once one
#: rank has exited with an error.
FOLLOW_ROOT_SECONDS = 2.0


class RootFailed(ValueError):
    """Raised on the ranks other than 0 when rank 0 failed in a step it does alone for
    every rank (reading the data); rank 0 raises its own error and reports it."""


def _first_integer(names, environ):
    for name in names:
        value = environ.get(name, "").strip()
        if value.isdigit():
            return int(value)
    return None


def launch_size(environ=None):
    """The number of processes the MPI launcher started, read from its variables
    (no MPI call); 1 for a plain launch."""
    size = _first_integer(SIZE_VARIABLES, os.environ if environ is None else environ)
    return 1 if size is None else size


def launch_rank(environ=None):
    """This process' rank, read from the launcher's variables (no MPI call); 0 for a
    plain launch. Lets a program quieten ranks other than 0 before MPI starts."""
    rank = _first_integer(RANK_VARIABLES, os.environ if environ is None else environ)
    return 0 if rank is None else rank


#: Settings for a launch on one small machine as root: Open MPI refuses root and more
#: processes than cores unless told (MPICH needs neither), and one thread per rank keeps
#: ranks from competing for the same cores.
LAUNCH_ENVIRONMENT = {
    "OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1",
    "OMPI_MCA_rmaps_base_oversubscribe": "1", "PRTE_MCA_rmaps_default_mapping_policy": ":oversubscribe",
    "NUMBA_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
}


def find_mpiexec():
    """The mpiexec beside this Python (where the `mpi` extra's MPICH wheel puts it) or on
    PATH; None when there is none."""
    beside = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    return beside if os.access(beside, os.X_OK) else shutil.which("mpiexec")


def launch_command(processes, argv):
    """(argv, environment) that run `argv` in `processes` processes under mpiexec, with
    LAUNCH_ENVIRONMENT added to this process' environment (tests and benchmarks)."""
    mpiexec = find_mpiexec()
    if mpiexec is None:
        raise FileNotFoundError('no mpiexec beside this Python or on PATH: pip install -e ".[mpi]"')
    return [mpiexec, "-n", str(int(processes)), *argv], {**os.environ, **LAUNCH_ENVIRONMENT}


def mpi_module():
    """mpi4py's MPI module (importing it starts MPI), with an error that says what to install."""
    try:
        from mpi4py import MPI
    except ImportError as error:
        raise ImportError(f"minidl.distributed needs mpi4py and an MPI library ({error}): "
                          'pip install -e ".[mpi]" installs both') from error
    return MPI
