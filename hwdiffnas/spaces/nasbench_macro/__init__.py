"""NAS-Bench-Macro: 3^8 = 6,561 MobileNetV2-block networks, every one trained on CIFAR-10 (the calibration ground
for objectives that stand in for accuracy in macro spaces)."""
