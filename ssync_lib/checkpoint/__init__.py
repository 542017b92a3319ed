"""Checkpoints: atomic writes, safe loads, every RNG state, clear errors on mismatch.

A checkpoint is one ``torch.save`` file holding only tensors and plain Python values, so that it
loads with ``torch.load(weights_only=True)`` (no arbitrary unpickling):

    {"format": 1, "step": int, "epoch": int, "batch_in_epoch": int, "world_size": int,
     "model": state_dict, "objective": state_dict, "optimizer": state_dict, "scheduler": state_dict,
     "rng": [rng_state() of rank 0, rank 1, ...], "log_accum": running log means (plain floats),
     "config": Config.to_dict()}

The data order is a pure function of (seed, epoch) and the step (see ``data/order.py``), so the step
is all a resumed run needs to continue it.

Training state: ``save_training_state`` writes the checkpoint above from rank 0 (with every rank's RNG
states); ``restore_training_state`` loads one into the modules, either to resume the same run or to
branch another run from it (``train.init_from``: model weights and the model's Adam state, the step and
the RNG states; the objective starts fresh).

A trained model: ``load_trained(run_folder_or_file, overrides)`` builds the model (and its objective) of the
checkpoint's config with its weights, in eval mode: the one way evaluation, the notebooks' run cache, the gradient
report and the benchmarks get a trained model.

Writes go to a temporary file in the same folder, are flushed and fsync'ed, then renamed over the
old file with ``os.replace`` (atomic on POSIX) and the folder is fsync'ed: a crash or an exception
at any point leaves the previous checkpoint intact.

Modules, one job each: ``files`` (atomic writes, safe loads, finite weights, kept copies), ``rng`` (RNG states),
``compat`` (config changes, module states that fit), ``trained`` (``load_trained``), ``training_state`` (save and
restore a run). The names below are importable from ``ssync_lib.checkpoint`` as before.
"""
from ssync_lib.checkpoint.compat import (FREE_KEYS, CheckpointMismatchError, ConfigChangeError, check_config_change,
                                         config_changes, config_differences, load_module_state, state_dict_mismatches,
                                         with_defaults)
from ssync_lib.checkpoint.files import (FORMAT, LAST, NOT_OURS_FIX, SHIPPED_DIR, TMP_PREFIX, NonFiniteWeightsError,
                                        check_finite_weights, keep_copy, last_finite_checkpoint, load_checkpoint,
                                        nonfinite_weights, remove_stale_tmp, save_checkpoint)
from ssync_lib.checkpoint.rng import rng_state, set_rng_state
from ssync_lib.checkpoint.trained import TrainedModel, checkpoint_config, checkpoint_file, load_trained
from ssync_lib.checkpoint.training_state import restore_training_state, save_training_state

__all__ = ["FREE_KEYS", "CheckpointMismatchError", "ConfigChangeError", "check_config_change", "config_changes",
           "config_differences", "load_module_state", "state_dict_mismatches", "with_defaults", "FORMAT", "LAST",
           "NOT_OURS_FIX", "SHIPPED_DIR", "TMP_PREFIX", "NonFiniteWeightsError", "check_finite_weights", "keep_copy",
           "last_finite_checkpoint", "load_checkpoint", "nonfinite_weights", "remove_stale_tmp", "save_checkpoint",
           "rng_state", "set_rng_state", "TrainedModel", "checkpoint_config", "checkpoint_file", "load_trained",
           "restore_training_state", "save_training_state"]
