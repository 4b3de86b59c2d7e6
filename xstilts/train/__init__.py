"""One Accelerate training loop for every training phase (MLM, intermediate, target)."""
