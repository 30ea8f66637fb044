#!/usr/bin/env bash
# GPU round 10 (prepared in session 6, not run yet): a wider gray real-noise model for microscopy. The shipped
# realdiff-gray (32-96 channels, 2.2M) flattened at ~33.3 dB on the driver's 8 FMDD pairs (round 9), so this trains
# the colour model's "small" widths (3.6M) on the round-8 microscopy recipe, seeded by folding colour weights to
# gray (init_from; nets.unet.fold_to_gray): from the real-photo model and from the unconditional DDPM. Long warm-up
# (round 9: short warm-ups can erase a fine-tuned skill). Later chunks: PART=a INIT=<unpacked previous weights>
# after editing the plan's "init" to the run's own stem.
# Build the carry: bash benchmarks/pack_carry.sh data d10 bsds500 fmdd8
#                  bash benchmarks/pack_carry.sh init init10 realdiff-color ddpm-natural
# Carry: [".carry/d10", ".carry/$INIT"] (park weights/ outside the repo during the call).
exec bash benchmarks/gpu_round.sh 10 d10 init10 8.0 8
