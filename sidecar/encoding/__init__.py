"""Pure transformations from events to model inputs: vocabulary and windows."""
