#!/usr/bin/env bash
# GPU round 10 (session 7, one H200): a wider gray real-noise model for microscopy. The round-8 realdiff-gray
# (32-96 channels, 2.2M) flattened at ~33.3 dB on the driver's 8 FMDD pairs (round 9), so this trains the colour
# model's "small" widths (3.6M) on the round-8 microscopy recipe, seeded by folding colour weights to gray
# (init_from; nets.unet.fold_to_gray): from the real-photo model and from the unconditional DDPM. Long warm-up
# (round 9: short warm-ups can erase a fine-tuned skill). The DDPM seed won; realdiff-gray ships chunk b's lr-1e-4 run.
#   PART=a INIT=init10 MIN=8      bash benchmarks/pack_carry.sh init init10 realdiff-color ddpm-natural
#   PART=b INIT=r10a   MIN=8      bash benchmarks/pack_carry.sh unpack <call a's files_at> r10a
#   PART=c INIT=r10b   MIN=3.5    bash benchmarks/pack_carry.sh unpack <call b's files_at> r10b
# Data: bash benchmarks/pack_carry.sh data d10 bsds500 fmdd8. Carry: [".carry/d10", ".carry/$INIT"] (park weights/
# outside the repo during the call). CPU checks: benchmarks/round10_cpu.sh.
exec bash benchmarks/gpu_round.sh 10 d10 init10 8.0 8
