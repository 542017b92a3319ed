"""The errors the library raises on purpose: bad input that the user can fix.

Every one derives from :class:`UserInputError`; the command line (``__main__.py``) prints its message and
its fix to stderr, without a traceback, and exits with status 2 (``SSYNC_DEBUG=1`` or ``--traceback`` shows
the traceback). Each also derives from the built-in exception its callers used to catch (``ValueError``,
``KeyError``, ``FileNotFoundError``, ...), so ``except ValueError`` keeps working.

The catalogue of bad inputs and what each answers: ``docs/bad-input.md``.
"""
from __future__ import annotations


class UserInputError(Exception):
    """Bad input (config, data, checkpoint, weights, command line): ``message`` says what, ``fix`` what to do
    (the class's ``default_fix`` when the raise site gives none)."""

    default_fix = "correct the input named above"

    def __init__(self, message: str, fix: str | None = None):
        super().__init__(message)
        self.message, self.fix = message, fix or self.default_fix

    def __str__(self) -> str:  # also for the KeyError subclasses, whose own __str__ would quote the message
        return self.message + (f"\nfix: {self.fix}" if self.fix else "")


def short_reason(err: BaseException) -> str:
    """``Type: the telling sentence`` of a load error: torch's weights_only refusal is a page long and suggests
    ``weights_only=False`` (never used here), so its "Unsupported global / operand" line is kept instead."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    telling = [line for line in lines if line.startswith(("Unsupported global", "Unsupported operand"))
               or "Unsupported global" in line]
    line = (telling or lines or [""])[0]
    line = line[line.find("Unsupported"):] if "Unsupported" in line else line
    return f"{type(err).__name__}: {line.split('. ')[0].rstrip('.')[:200]}"


class ConfigError(UserInputError, ValueError):
    """A config value (or a command-line argument) is invalid."""

    default_fix = "change the value (--set key=value; the fields and their meaning are in ssync_lib/config.py)"


class ConfigKeyError(UserInputError, KeyError):
    """An unknown or ambiguous config key, section or profile."""

    default_fix = "use one of the names listed (config keys: the dataclass fields in ssync_lib/config.py)"


class MissingInputError(UserInputError, FileNotFoundError):
    """A data folder, checkpoint or weights file that the config names does not exist."""

    default_fix = "check the path (relative paths in a config are relative to the project root)"


class RunExistsError(UserInputError, FileExistsError):
    """A run folder already holds a checkpoint (a fresh start would overwrite it)."""

    default_fix = "resume it (--resume), choose another name (--name), or delete the folder"


class CheckpointError(UserInputError, RuntimeError):
    """A file is not a checkpoint of this project, or does not fit the config."""

    default_fix = "give a last.pt or step-<N>.pt written by `python -m ssync_lib train` with a matching config"


class WeightsError(UserInputError, ValueError, RuntimeError):
    """``model.weights`` or ``model.backbone`` names something the encoder cannot use."""

    default_fix = ("set model.weights to 'timm', 'random' or a .safetensors / .pth state dict of the ViT named by "
                   "model.backbone")


class NonFiniteLossError(UserInputError, RuntimeError):
    """A loss term (or the gradient norm) became NaN or infinite."""

    default_fix = "lower train.lr or train.grad_clip, or check the data; --resume continues from the last checkpoint"


class DataError(UserInputError, ValueError):
    """A data file, sample or key is unusable; the message names the file, the sample and the key."""

    default_fix = ("repair or regenerate the file named above (synthetic data: data_scripts/make_synthetic.py "
                   "--force), or move it out of the data folder")


class RunBusyError(UserInputError, RuntimeError):
    """Another process is writing in the run folder (it holds the folder's lock, ``run_lock.py``)."""

    default_fix = "wait until the other process ends, or choose another name (--name)"


class Interrupted(KeyboardInterrupt):
    """Ctrl-C (SIGINT) during a command; ``message`` says what is safe on disk, ``fix`` how to continue. The
    command line prints both and exits with status 130 (``__main__.py``)."""

    def __init__(self, message: str, fix: str = ""):
        super().__init__(message)
        self.message, self.fix = message, fix

    def __str__(self) -> str:
        return self.message + (f"\nfix: {self.fix}" if self.fix else "")


class RunFolderError(UserInputError, OSError):
    """A run folder or output path cannot be written (read-only, not this user's, full disk)."""

    default_fix = "make the folder writable, free some space, or write elsewhere"


class TrainingCollapseError(UserInputError, RuntimeError):
    """A self-supervised teacher's output stopped depending on its input (``python -m ssync_lib pretrain``)."""

    default_fix = "start again with a lower train.lr or a higher dino.momentum / dino.centre_momentum"
