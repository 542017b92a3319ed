"""Objectives: reconstruction and slot-slot contrast (the baseline), SRL's dense alignment, SSync."""
from ssync_lib.objectives.dense_alignment import DenseAlignment, redundancy_loss
from ssync_lib.objectives.objective import OBJECTIVE_KEYS, OBJECTIVES, LossOutput, Objective, build_objective
from ssync_lib.objectives.reconstruction import reconstruction_loss
from ssync_lib.objectives.slot_contrast import slot_contrast_loss
from ssync_lib.objectives.ssync import PseudoLabels, label_statistics, pseudo_labels, ssync_loss, ssync_weight

__all__ = ["OBJECTIVE_KEYS", "OBJECTIVES", "DenseAlignment", "LossOutput", "Objective", "PseudoLabels",
           "build_objective", "label_statistics", "pseudo_labels", "reconstruction_loss", "redundancy_loss",
           "slot_contrast_loss", "ssync_loss", "ssync_weight"]
