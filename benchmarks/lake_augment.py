"""Affine augmentation during meta-training, on Lake et al.'s runs (issue 15).

The sixth try at the within-alphabet one-shot target (95.5%, see
``lake_runs.py``): the recipe of ``lake_runs.py --lr 4e-3`` (strided Conv4,
rot90, 20-way 1-shot episodes, 28 px, one thread) meta-trained with
``augmentation=AffineAugmentation(...)``: each drawn image rotated, shifted,
scaled and sheared at random, as Koch et al. (2015) trained their one-shot
Omniglot networks. Test-time shifts (``lake_library.py``) made each query
look more like its support; training on distortions might teach the same
invariance to the backbone.

Two stages, settings chosen only on background:

- ``select``: meta-train on 25 of the 30 ``background`` alphabets for a
  fixed number of iterations (``--max-iter``; the baseline ``lr4-28`` is
  ``lake_runs.py``'s select model, 5,517 iterations), score 100 Lake runs on
  the 5 held-out alphabets: inductive, inductive with
  ``test_time_shifts=(1, 2, 3)`` and PT-MAP with them; and random 20-way and
  5-way 1-shot episodes. **Rule, written before scoring:** a candidate passes
  when both its inductive+shifts and its PT-MAP+shifts accuracies beat the
  baseline's by more than 1 point; of those that pass, the best mean of the
  two goes to ``final``. Augmentation costs CPU time, so its cost per
  iteration is measured and reported beside the accuracies.
  **Second round, written before its scoring:** at 5,517 iterations no
  candidate passed (the models are far from converged there, and
  augmentation is a regulariser), so the baseline and ``aff10-28`` (the
  better of the first round by the rule's mean) are meta-trained again for
  20,000 iterations (``lr4-28-20k``, ``aff10-28-20k``) and the same rule
  decides.
  Neither passed at 20,000 iterations either (``aff10-28-20k``: +0.75
  inductive+shifts, -0.1 PT-MAP+shifts), so ``final`` ran without
  augmentation: the recipe of ``lake_runs.py``'s ``lr4-28-full`` retrained
  with its seed and 63,986 iterations (``--max-iter``; its file was lost
  with ``/tmp``). That run fitted the budget in 1,675 CPU s on a quieter
  day; on this session's machine the probes priced the budget at 43,709
  iterations (53 ms each against 26), so the retraining's CPU time is
  reported as measured, above the budget.
  **Third round (the eighth try), written before its scoring: more ways
  per episode at the same rows per iteration** (Snell et al. 2017 trained
  Omniglot with 60 ways and found higher-way training helped 1-shot):
  ``--n-way 60 --n-query 1`` and ``--n-way 40 --n-query 2`` (120 rows a
  meta-batch, as 20-way with 5 queries), no augmentation, 20,000
  iterations, against ``lr4-28-20k`` by the same rule (more than 1 point
  on both inductive+shifts and PT-MAP+shifts); one that passes goes to
  ``final`` within the budget as priced by the probes that day.
  Neither passed (``w60q1-20k``: +0.6 inductive+shifts, +1.1 PT-MAP+shifts;
  ``w40q2-20k``: +2.4 and +0.6), but both gained 1.3-1.4 points inductive
  without shifts, and 100 runs on 5 alphabets leave a 95% CI of about ±2
  points (and the baseline was trained on another day).
  **Confirmation (``confirm``), written before its scoring:** the two
  candidates and the baseline's file on disk (``lr4-28-20k``, retrained
  with its settings and seed) on 300 new held-out runs (run seeds 1, 2 and
  3: other characters and drawers of the same 5 alphabets), deployed
  inductive+shifts and with PT-MAP+shifts at ``lake_transductive.py``'s
  chosen settings; the same rule (more than 1 point on both means over the
  baseline's), and of those that pass the best mean of the two goes to
  ``final``. Neither passed: 40-way +1.45 and +0.92 points, 60-way +0.22
  and +0.55, so no final was trained with them.
  **Tenth try, written before its scoring: the eighth try's 40-way episodes
  with mirror images as new classes** (``--class-augmentation dihedral``:
  each character, its mirror image and their quarter turns, 8 classes per
  character where rot90 gives 4; no cost per iteration). ``w40q2-d8-20k``
  (40-way 2-query, dihedral, 20,000 iterations) against the baseline
  ``lr4-28-20k``, with ``w40q2-20k`` as a reference, all three meta-trained
  the same day with seed 0, on 400 new held-out runs (``confirm --round
  confirm-tenth --run-seeds 4,5,6,7``; seeds 0-3 decided earlier rounds).
  It passes when it beats the baseline by more than 1 point on both
  inductive+shifts and PT-MAP+shifts (chosen settings) *and* does not lose
  to the reference on either (the mirror images must add something to the
  40-way episodes, which alone fell short of the rule); if it passes, it
  goes to ``final`` within the budget as priced by the probes that day,
  scored on ``evaluation``'s runs of seeds 0 and 1 (100 each, as
  ``lake_transductive.py``'s final).
  It did not pass: +1.54 inductive+shifts and +0.66 PT-MAP+shifts over the
  baseline (+0.23 and +0.11 over the reference), so no final was trained.
  **Eleventh try, written before its training: the random-episode
  targets** (inductive 98.8% 5-way 1-shot and 96.0% 20-way 1-shot; the
  recipe's final, ``lr4-28-full``, scores 98.50 and 95.54% with the shifts).
  On the held-out alphabets 40-way 2-query episodes led the 20-way recipe
  on every comparison so far: random episodes at select (95.0 against
  94.2% 20-way 1-shot, 98.6 against 98.4% 5-way, with the shifts) and the
  Lake runs of both confirmation rounds (+1.45 / +0.92 and +1.31 / +0.55
  points), though never by the Lake rule's margin. So ``final --name
  w40q2-full --n-way 40 --n-query 2`` (no dihedral: its effect on random
  episodes was never measured on held-out alphabets), within the budget as
  priced by the probes that day, seed 0, scored as every final (300 random
  episodes, 100 Lake runs) and with ``lake_transductive.py final`` (Lake
  runs of seeds 0 and 1, the chosen settings). It was chosen on held-out
  alphabets only, so its figures on ``evaluation`` become the recipe's
  reported ones whichever way they fall, beside ``lr4-28-full``'s.
  On ``evaluation`` (78,369 iterations, 2,771 CPU s beside other jobs):
  95.87 / 98.41% random 20-way / 5-way 1-shot with the shifts (95.54 /
  98.50 for ``lr4-28-full``), 86.95% inductive+shifts on the Lake runs,
  95.3% PT-MAP+shifts and 95.2% TIM+shifts over 200 runs at the chosen
  settings, the same as ``lr4-28-full``'s: the targets stay unmet.
  **Sixteenth try, written before its training: the 40-way episodes drawn
  within one alphabet half of the time** (``--within 0.5``, as
  ``lake_runs.py``'s second try, which tested it with 20-way episodes at a
  short budget, -0.7 inductive and +2.1 with TIM on 100 runs, within the
  noise). Lake's runs are within one alphabet; 40-way episodes of one
  alphabet (its characters and their quarter turns) train on the
  distinctions they ask for. ``select --name w40q2-wg50-20k --max-iter
  20000 --n-way 40 --n-query 2 --within 0.5``, then ``confirm --name
  w40q2-wg50-20k --baseline w40q2-20k --round confirm-sixteenth
  --run-seeds 28,29,30,31`` (400 new held-out runs). It passes when it beats
  ``w40q2-20k`` by more than 1 point on both inductive+shifts and
  PT-MAP+shifts (chosen settings); if it passes, a final within the budget
  follows, reported whichever way it falls.
  It did not pass: 87.94 / 95.46% against 88.44 / 96.45% (-0.5 and -1.0
  points), so no final was trained.
  **Seventeenth try, written before its training: max-pooling where the
  strided Conv4 samples.** The test-time shifts gain 4-5 points inductive:
  the strided Conv4 (stride-2 convolutions from the first layer, MAML's
  Omniglot model) samples its first feature maps at every other pixel of a
  28 px image whose strokes are 1-2 px wide, so its embedding changes with
  a one-pixel shift. Two Conv4s that max-pool instead (``--downsample``,
  one choice per block): the first block max-pooled at full resolution and
  the other three strided (``maxpool,strided,strided,strided``, name
  ``w40q2-mp1``), and the max-pool Conv4 of Prototypical Networks
  (``maxpool,maxpool,maxpool,maxpool``, ``w40q2-mp4``), 40-way 2-query
  episodes, meta-trained for the CPU time of ``w40q2-20k``'s 20,000
  strided iterations: ``benchmarks/conv4_cost.py`` prices an iteration
  of each (one process, candidates alternated) and ``--max-iter`` is its
  ``iterations_for_20000_strided``. Then ``confirm --name
  w40q2-mp1,w40q2-mp4 --baseline w40q2-20k --round confirm-seventeenth
  --run-seeds 32,33,34,35 --rule paired`` (400 new held-out runs): a
  candidate passes when its PT-MAP+shifts gain over ``w40q2-20k`` exceeds
  1.96 standard errors of the paired per-run differences and its
  inductive+shifts accuracy does not fall; of those that pass, the best
  mean of the two goes to ``final`` with ``iterations_for_78369_strided``
  iterations (``w40q2-full``'s budget at the same cost ratio), scored as
  the eleventh try's final and reported whichever way it falls.
  Neither passed: ``w40q2-mp1`` (10,298 iterations, 770 CPU s beside the
  other) 87.66 / 95.95% and ``w40q2-mp4`` (5,923, 742 CPU s) 88.50 /
  96.19% against 88.95 / 96.65% (inductive+shifts / PT-MAP+shifts; paired
  gains -1.29 / -0.70 and -0.45 / -0.46 points), so no final was trained.
  Without the shifts, at select, ``w40q2-mp4`` led on Lake's runs (86.2%
  against 85.9%) and ``w40q2-mp1`` did not (85.3%); both led 20-way 1-shot
  (93.3 and 93.9% against 93.2%): max-pooling buys some of the invariance
  the shifts give, at the price of iterations.
  **Eighteenth try, written as its training began, before any scoring: the
  learning rate for 40-way episodes.** 4e-3 was chosen for 20-way episodes
  at 5,517 iterations (``lake_runs.py``'s fourth try); the 40-way recipe
  runs 78,369 with the same cosine schedule, and a longer schedule often
  takes a higher peak. ``select --name w40q2-lr8-20k --max-iter 20000
  --n-way 40 --n-query 2 --lr 8e-3`` and ``--name w40q2-lr2-20k --lr
  2e-3`` (the cost per iteration of ``w40q2-20k``), then ``confirm --name
  w40q2-lr8-20k,w40q2-lr2-20k --baseline w40q2-20k --round
  confirm-eighteenth --run-seeds 36,37,38,39 --rule paired``: the
  seventeenth try's paired rule; of those that pass, the best mean of the
  two goes to ``final`` with 78,369 iterations at its learning rate,
  reported whichever way it falls.
  Neither passed: 8e-3 87.50 / 95.66% and 2e-3 86.88 / 96.06% against
  88.01 / 96.24% (inductive+shifts / PT-MAP+shifts; paired gains -0.51 /
  -0.57 and -1.14 / -0.17 points), so 4e-3 stays and no final was trained.
  **Nineteenth try, written before its training: a narrower strided Conv4
  for more iterations.** A width of 96 lost at half the iterations
  (``lake_runs.py``'s fourth try); the other way round, 48 channels (a
  192-d embedding) cost less per iteration. ``conv4_cost.py --candidates
  strided-48 --out conv4_cost_width`` prices it; ``select --name
  w40q2-c48 --n-way 40 --n-query 2 --width 48 --max-iter N`` with N its
  ``iterations_for_20000_strided``, then ``confirm --name w40q2-c48
  --baseline w40q2-20k --round confirm-nineteenth --run-seeds 40,41,42,43
  --rule paired``: the seventeenth try's paired rule; if it passes, a
  final with its ``iterations_for_78369_strided``, reported whichever way
  it falls.
  It did not pass: an iteration cost 0.84x the 64-channel one (32.5
  against 38.9 ms), so 23,960 iterations (699 CPU s); 87.78 / 96.10%
  against 88.66 / 96.34% (paired -0.89 / -0.24 points), no final.
  **Twentieth try, written before its training: larger input images.**
  The data file's 28 px rows are the 105 px originals shrunk almost four
  times; Lake's runs ask for distinctions within one alphabet (a hook, a
  dot, a crossing), which a 28 px image may blur away. The second try's
  40 px input lost at a short budget (250 CPU s, half the iterations); the
  40-way recipe has since shown that it gains little from its last
  iterations (+0.3 random 20-way 1-shot from 20,000 to 78,369). Two strided
  Conv4s, 64 channels, 40-way 2-query episodes, on 32 px and 40 px images
  (``--image-size``: ``load_omniglot``'s Lanczos resampling of the
  originals), meta-trained for the CPU time of ``w40q2-20k``'s 20,000
  iterations: ``conv4_cost.py --candidates strided-32px,strided-40px --out
  conv4_cost_size`` prices them and ``--max-iter`` is each one's
  ``iterations_for_20000_strided`` (``select --name w40q2-px32
  --image-size 32`` and ``--name w40q2-px40 --image-size 40``). Then
  ``confirm --name w40q2-px32,w40q2-px40 --baseline w40q2-20k --round
  confirm-twentieth --run-seeds 44,45,46,47 --rule paired`` (each model
  scored on its own size; the test-time shifts stay (1, 2, 3) px): the
  seventeenth try's paired rule; of those that pass, the best mean of the
  two goes to ``final`` with its ``iterations_for_78369_strided``, scored
  as the eleventh try's final and reported whichever way it falls.
  Neither passed: 1.21x and 1.92x the cost of an iteration (37.7 and 59.7
  against 31.1 ms), so 16,516 and 10,414 iterations; 87.25 / 96.11% (32
  px) and 85.93 / 95.49% (40 px) against 87.92 / 96.54% (paired -0.67 /
  -0.42 and -2.00 / -1.05 points), so no final was trained.
  **Twenty-fourth try, written before its training: each character scaled
  to a box and centred on its ink** (``skmeta.datasets.ink_box``, written
  for this try in ``benchmarks/ink_box.py`` and moved to the library
  unchanged; MNIST's normalisation of handwritten digits). Drawers vary a
  character's size (the larger side of its ink box spans 44 to 90 of the
  105 pixels, 5th to 95th percentile over ``background``) and place (its
  centre of mass moves by about 6.5 pixels, one standard deviation), and
  Lake's runs take support and queries from different drawers. ``--ink
  box``: the larger side of the ink box scaled to 20 of the 28 pixels,
  aspect kept, centre of mass at the centre; ``--ink com``: only centred.
  Both for training and test rows, from the 105 px originals. ``select
  --name w40q2-box-20k --n-way 40 --n-query 2 --ink box --max-iter 20000``
  and ``--name w40q2-com-20k --ink com`` (the normalisation is done once,
  so an iteration costs what ``w40q2-20k``'s does), then ``confirm --name
  w40q2-box-20k,w40q2-com-20k --baseline w40q2-20k --round
  confirm-twenty-fourth --run-seeds 64,65,66,67 --rule paired`` (each
  model scored on its own rows; the test-time shifts stay (1, 2, 3) px):
  the seventeenth try's paired rule; of those that pass, the best mean of
  the two goes to ``final`` with 78,369 iterations, scored as the
  twenty-third try's deployments (``test_time_turns="dihedral"``
  inductive, PT-MAP+shifts transductive) on ``evaluation`` and reported
  whichever way it falls.
  Both passed: box 90.85 / 97.49% and centre 89.62 / 97.17% against 87.80
  / 95.99% (paired +3.05 / +1.50, margins 0.64 / 0.60; +1.82 / +1.19).
  ``final --name w40q2-box-full --n-way 40 --n-query 2 --ink box
  --max-iter 78369`` (2,931 CPU s beside other jobs), then ``lake_views.py
  estimators --round ink-box``: 97.08% on Lake's runs with PT-MAP (200),
  90.53% inductive with the dihedral turns, 99.09% random 5-way 1-shot,
  97.42% 20-way 1-shot (``benchmarks/RESULTS.md``).
  **Twenty-fifth try, written before its training: wide characters given
  more pixels, and mirror images as classes on the boxed rows.** The
  inductive deployment's errors on held-out runs (50 runs of seed 68,
  ``w40q2-box-20k``, dihedral turns: 68 errors in 1,000 queries) fall on
  wide characters: queries whose ink box is over 2.2 times as wide as
  high are 6% of the queries and 19% of the errors, and the widest
  alphabet (median ratio 1.75) has 15% errors against 0.5-9% for the
  others. With the aspect kept, such a character spans 20 pixels but only
  6-9 pixels high. Two candidates, each against ``w40q2-box-20k``:
  ``--ink box-adaptive`` (``ink_box(..., aspect="adaptive")``: the short
  side scaled to the square root of the sine of the ratio of the sides,
  Liu et al.'s 2004 aspect ratio adaptive normalisation of handwritten
  digits; a 3:1 character becomes 10:7) and ``--ink box
  --class-augmentation dihedral`` (the tenth try's mirror classes, which
  gained +0.23 / +0.11 on plain rows; the rows have changed since).
  ``select --name w40q2-boxa-20k --n-way 40 --n-query 2 --ink box-adaptive
  --max-iter 20000`` and ``--name w40q2-box-d8-20k --ink box
  --class-augmentation dihedral``, then ``confirm --name
  w40q2-boxa-20k,w40q2-box-d8-20k --baseline w40q2-box-20k --round
  confirm-twenty-fifth --run-seeds 69,70,71,72 --rule inductive`` (400
  new held-out runs, 100 each; seed 68 served the error count above, so
  it is left out: first written as 68-71, changed before any scoring).
  **Rule** (``--rule inductive``, new: the target left is the inductive
  one): the inductive+shifts gain beyond 1.96 paired standard errors, and
  no significant PT-MAP+shifts loss (a paired gain above minus its
  margin); of those that pass, the best inductive+shifts mean goes to
  ``final`` within 1,200 CPU s and is scored with ``lake_views.py
  estimators`` as the twenty-fourth try's ``ink-box-1200`` round was,
  reported whichever way it falls. (First written as ``--cpu-budget
  1200``, priced by the probes that day; changed before any scoring of
  the final: its probes, run beside the confirmation, priced 22,088
  iterations where ``w40q2-box-1200``'s priced 34,170 at the same cost
  per iteration, the rows being normalised once. The final runs
  ``--max-iter 34170``, the iterations of the model it is compared with,
  and its CPU time is reported as measured.)
  Both passed: ``w40q2-boxa-20k`` 92.21 / 98.26% and ``w40q2-box-d8-20k``
  92.03 / 98.24% against 91.47 / 98.33% (inductive+shifts / PT-MAP+shifts;
  paired +0.74 (margin 0.49) / -0.06 (0.33) and +0.55 (0.43) / -0.09
  (0.29)); ``w40q2-boxa-20k`` has the better inductive mean and went to
  the final.
  **Twenty-sixth try, written before its training: both.** The two
  changes passed one by one and act on different things (the rows; the
  classes of the episodes), so together: ``select --name
  w40q2-boxa-d8-20k --n-way 40 --n-query 2 --ink box-adaptive
  --class-augmentation dihedral --max-iter 20000``, then ``confirm --name
  w40q2-boxa-d8-20k --baseline w40q2-boxa-20k --round confirm-twenty-sixth
  --run-seeds 73,74,75,76 --rule inductive`` (400 new held-out runs). If it
  passes, ``final --name w40q2-boxa-d8-1200 ... --max-iter 34170``,
  scored as the twenty-fifth try's final; the chosen one's figures are
  reported, the other's shown.
  It did not pass: 92.16 / 98.59% against 91.95 / 98.36% (paired +0.21
  (margin 0.37) / +0.22 (0.32)); no final.
  **Twenty-seventh try, written before its training: one stroke width.**
  Omniglot's pen draws strokes about 5.5 pixels wide at 105 px (5.0-6.1,
  5th-95th percentile of twice the ink area over its edge pixels, every
  7th ``background`` image); scaling each character to the box makes
  them 1.2 to 2.6 pixels wide at 28 px (median 1.6), thicker on
  characters drawn small: a nuisance the box brought in. ``--ink
  box-adaptive-stroke``: ``ink_box(..., aspect="adaptive",
  stroke_width=1.6)``, each character thinned to its skeleton
  (scikit-image) and redrawn with strokes 1.6 pixels wide. ``select
  --name w40q2-boxas-20k --n-way 40 --n-query 2 --ink box-adaptive-stroke
  --max-iter 20000``, then ``confirm --name w40q2-boxas-20k --baseline
  w40q2-boxa-20k --round confirm-twenty-seventh --run-seeds 77,78,79,80
  --rule inductive`` (400 new held-out runs). If it passes, its final
  (``--max-iter 34170``) is scored as the twenty-fifth try's was.
  It lost: 90.47 / 97.28% against 91.65 / 97.76% (paired -1.17 (margin
  0.56) / -0.49 (0.57)); no final. The strokes' width carries something
  the skeleton loses (where strokes meet and overlap), or the width
  itself told characters drawn small from large ones within an alphabet.
  **Twenty-eighth try, written before its training: rotations and shears
  on the normalised rows.** The sixth try's affine augmentation gained
  +0.75 points inductive+shifts at 20,000 iterations on plain rows,
  judged then by a rule on both deployments; the box now removes size
  and place, so what drawers still vary is slant and rotation. ``select
  --name w40q2-boxa-rs-20k --n-way 40 --n-query 2 --ink box-adaptive
  --max-iter 20000 --affine '{"degrees": 10, "translate": 0.0, "scale":
  [1.0, 1.0], "shear": 10}'``, then ``confirm --name w40q2-boxa-rs-20k
  --baseline w40q2-boxa-20k --round confirm-twenty-eighth --run-seeds
  81,82,83,84 --rule inductive`` (400 new held-out runs). If it passes,
  its final (``--max-iter 34170``) is scored as the twenty-fifth try's
  was.
  It did not pass: 92.07 / 98.16% against 91.65 / 98.09% (paired +0.42
  (margin 0.45) / +0.07 (0.40)); no final.
  **Twenty-ninth try, written before its training: a larger box.** Many
  of the adaptive model's errors on held-out runs are characters told
  apart by a dot or a short stroke, a pixel or two at 28 px; the box
  leaves 4 pixels of margin on each side. ``--ink box-adaptive-22`` and
  ``box-adaptive-24``: the longer side of the ink box at 22 or 24 of 28
  pixels (the test-time shifts of up to 3 pixels then push some ink past
  the edge). ``select --name w40q2-boxa22-20k --n-way 40 --n-query 2
  --ink box-adaptive-22 --max-iter 20000`` and ``--name w40q2-boxa24-20k
  --ink box-adaptive-24``, then ``confirm --name
  w40q2-boxa22-20k,w40q2-boxa24-20k --baseline w40q2-boxa-20k --round
  confirm-twenty-ninth --run-seeds 85,86,87,88 --rule inductive`` (400
  new held-out runs). The best that passes gets a final (``--max-iter
  34170``), scored as the twenty-fifth try's was, in a later session if
  this one has no time left.
  Neither passed: 91.51 / 98.04% (22) and 91.19 / 97.94% (24) against
  91.60 / 97.99% (paired -0.09 (margin 0.46) / +0.05 and -0.41 (0.47) /
  -0.05): 20 of 28 pixels stays; no final.
  **Thirtieth try, written before its training: each character's slant
  removed.** After the box, drawers still vary the slant: over
  ``background`` the moment shear of a character's ink (covariance of
  column and row over the row variance, about the centre of mass) has a
  spread of 0.35 columns per row (standard deviation), and 46% of its
  variance lies between drawings of one character. Moment deskewing, as
  for handwritten digits, removes it (and with it any slant that tells two
  characters apart). ``--ink box-adaptive-deskew``:
  ``ink_box(..., aspect="adaptive", deskew=1.0)`` (new), the slant removed
  before the box is measured; ``box-adaptive-deskew50``: half of it
  removed. ``select --name w40q2-boxad-20k --n-way 40 --n-query 2 --ink
  box-adaptive-deskew --max-iter 20000`` and ``--name w40q2-boxad50-20k
  --ink box-adaptive-deskew50``, then ``confirm --name
  w40q2-boxad-20k,w40q2-boxad50-20k --baseline w40q2-boxa-20k --round
  confirm-thirtieth --run-seeds 89,90,91,92 --rule inductive`` (400 new
  held-out runs). The best that passes gets a final (``--max-iter
  34170``), scored as the twenty-fifth try's was.
  Both lost: 90.47 / 97.26% (deskewed) and 91.42 / 97.85% (half) against
  91.90 / 97.96% (paired -1.43 (margin 0.51) / -0.70 (0.40) and -0.47
  (0.47) / -0.11 (0.37)); no final. The slant stays as drawn.
  **Thirty-first try, written before its training: elastic distortions.**
  The twenty-eighth try's rotations and shears gained +0.42 inductive
  (margin 0.45); what separates two drawings of one character is less a
  global map than bent and stretched strokes, which Simard et al.'s
  (2003) elastic distortions imitate (``ElasticAugmentation``, new: a
  uniform random field per image blurred by a Gaussian of ``sigma``
  pixels and scaled by ``alpha``). ``select --name w40q2-boxa-el16-20k
  --n-way 40 --n-query 2 --ink box-adaptive --max-iter 20000 --elastic
  '{"alpha": 16, "sigma": 4}'`` and ``--name w40q2-boxa-el34-20k
  --elastic '{"alpha": 34, "sigma": 4}'`` (Simard et al.'s setting for
  28x28 digits; displacements of about 0.8 and 1.7 pixels), then
  ``confirm --name w40q2-boxa-el16-20k,w40q2-boxa-el34-20k --baseline
  w40q2-boxa-20k --round confirm-thirty-first --run-seeds 89,90,91,92
  --rule inductive``: the thirtieth try's runs and baseline, so that the
  paired gains of both tries are measured on the same runs. If candidates
  of both tries pass, the one with the larger paired inductive gain gets
  the final; nothing combining the two is trained without a rule of its own.
  Both passed: 92.65 / 98.18% (``alpha`` 16) and 92.64 / 98.14% (34)
  against 91.90 / 97.96% (paired +0.75 (margin 0.43) / +0.21 (0.33) and
  +0.74 (0.46) / +0.17 (0.43)); the thirtieth try's candidates lost, so
  ``alpha`` 16 gets the final: ``final --name w40q2-boxa-el16-1200
  --n-way 40 --n-query 2 --ink box-adaptive --max-iter 34170 --elastic
  '{"alpha": 16, "sigma": 4}'``, then ``lake_views.py estimators --round
  ink-box-adaptive-elastic-1200``. The augmentation costs 3.0 ms a
  meta-batch: 700 CPU s for the 20,000 select iterations against 656.
  The final took 1,201 CPU s; on ``evaluation`` through the estimators:
  90.97% on Lake's runs inductive (``dihedral``; 90.55% without elastic,
  paired +0.42, margin 0.54), 96.83% with PT-MAP (96.62%), 97.65% random
  20-way 1-shot (97.46%; +0.19, margin 0.08), 99.11% 5-way (99.02%).
  **Thirty-second try, written before its training: mirror classes with
  the elastic distortions.** The twenty-fifth try's mirror classes
  (``--class-augmentation dihedral``) passed on the boxed rows (+0.55)
  and added +0.21 (margin 0.37) to the adaptive ones; with the elastic
  distortions the network sees more drawings of each class, and twice the
  classes may pay where they did not. ``select --name
  w40q2-boxa-el16-d8-20k --n-way 40 --n-query 2 --ink box-adaptive
  --max-iter 20000 --elastic '{"alpha": 16, "sigma": 4}'
  --class-augmentation dihedral``, then ``confirm --name
  w40q2-boxa-el16-d8-20k --baseline w40q2-boxa-el16-20k --round
  confirm-thirty-second --run-seeds 93,94,95,96 --rule inductive``. If it
  passes, its final (``--max-iter 34170``) is scored as the thirty-first
  try's was, in a later session if this one has no time left.
  It did not pass: 92.70 / 98.15% against 92.86 / 98.09% (paired -0.16
  (margin 0.36) / +0.06 (0.30)); no final.
  (``lake_metric.py`` holds the thirty-third try, a metric at deployment.)
  **Thirty-fourth try, written before its training: rotations and shears,
  then elastic distortions.** Simard et al. (2003) composed an affine map
  with the elastic field; here the twenty-eighth try's rotations and shears
  (+0.42, margin 0.45, alone) then the thirty-first try's elastic
  distortions (+0.75, margin 0.43, alone), as a list
  (``augmentation=[AffineAugmentation(...), ElasticAugmentation(...)]``,
  new: the items applied in turn). ``select --name w40q2-boxa-rs-el16-20k
  --n-way 40 --n-query 2 --ink box-adaptive --max-iter 20000 --affine
  '{"degrees": 10, "translate": 0.0, "scale": [1.0, 1.0], "shear": 10}'
  --elastic '{"alpha": 16, "sigma": 4}'``, then ``confirm --name
  w40q2-boxa-rs-el16-20k --baseline w40q2-boxa-el16-20k --round
  confirm-thirty-fourth --run-seeds 103,104,105,106 --rule inductive``
  (400 new held-out runs; the baseline retrained this session with its
  settings and seed, its file having gone with ``/tmp``: at select 92.55
  / 97.85% inductive+shifts / PT-MAP+shifts where the lost file scored
  92.65 / 98.15%, so the retraining is not bit-identical). If it passes,
  its final (``--max-iter 34170``) is scored as the thirty-first try's
  was.
  It did not pass: 92.82 / 98.46% against 92.91 / 98.35% (paired -0.09
  (margin 0.42) / +0.11 (0.30)); no final. The select run crashed after
  training (the augmentation's pricing took one augmentation, not a list)
  and was scored again from its saved model and ledger: 1,062 CPU s for
  the 20,000 iterations (6.4 ms a meta-batch of augmentation) beside the
  CI run, where the baseline's retraining took 950.
  (``lake_hubness.py`` and ``lake_local.py`` hold the thirty-fifth and
  thirty-sixth tries, at deployment.)
  **Thirty-seventh try, written before its training: a 4x4 embedding.**
  The errors left are near misses, often a dot or a short stroke; the
  strided Conv4 ends in a 2x2 map (256 features), its last block halving
  a 4x4 one. ``--downsample strided,strided,strided,none`` (``"none"``,
  new: a block that keeps its input's size) ends in the 4x4 map (1,024
  features) at about 5% more computation (its last block computes 16
  positions where it computed 4, the first 196). ``select --name
  w40q2-boxa-el16-s4-20k --n-way 40 --n-query 2 --ink box-adaptive
  --max-iter 20000 --elastic '{"alpha": 16, "sigma": 4}' --downsample
  strided,strided,strided,none``, then ``confirm --name
  w40q2-boxa-el16-s4-20k --baseline w40q2-boxa-el16-20k --round
  confirm-thirty-seventh --run-seeds 115,116,117,118 --rule inductive``.
  If it passes, its final (``--max-iter 34170``, its CPU time reported
  as measured) is scored as the thirty-first try's was, in a later session
  if this one has no time left.
  It passed: 93.06 / 98.54% against 92.46 / 98.19% on the 400 new
  held-out runs (paired +0.60 (margin 0.41) / +0.35 (0.28)); 1,092 CPU s
  for the 20,000 select iterations (the baseline's retraining: 950 beside
  the CI run). Its final: ``final --name w40q2-boxa-el16-s4-1200 --n-way
  40 --n-query 2 --ink box-adaptive --max-iter 34170 --elastic '{"alpha":
  16, "sigma": 4}' --downsample strided,strided,strided,none``, then
  ``lake_views.py estimators --round ink-box-adaptive-elastic-s4-1200``.
  The final took 1,899 CPU s as measured beside other jobs (7% more an
  iteration than the strided model's 34,170 priced at 1,200); on
  ``evaluation`` through the estimators 90.90% inductive on Lake's runs
  (``dihedral``; -0.07 paired, margin 0.40, against
  ``w40q2-boxa-el16-1200``), 97.08% with PT-MAP (+0.25, 0.61), 97.68%
  random 20-way and 99.13% 5-way 1-shot (+0.03, +0.02): the held-out gain
  did not carry over.
  **Thirty-eighth try, written before its training: a 7x7 embedding at
  the same CPU time.** The 4x4 final map gained +0.60 inductive at 7%
  more computation; ``--downsample strided,strided,none,none`` keeps the
  7x7 map of block 2 through blocks 3 and 4 (3,136 features) at 72.0 ms
  an iteration against 48.3 (``conv4_cost.py --candidates
  final-4x4,final-7x7,third-kept``), so it runs the iterations that cost
  what the 4x4 model's did: 13,417 at select (20,000 x 48.3 / 72.0) and
  21,451 at final (34,170 strided iterations x 45.2 / 72.0, the 1,200 CPU
  s of 20 CPU-minutes read strictly). ``select --name
  w40q2-boxa-el16-s7-13k --n-way 40 --n-query 2 --ink box-adaptive
  --max-iter 13417 --elastic '{"alpha": 16, "sigma": 4}' --downsample
  strided,strided,none,none``, then ``confirm --name
  w40q2-boxa-el16-s7-13k --baseline w40q2-boxa-el16-s4-20k --round
  confirm-thirty-eighth --run-seeds 119,120,121,122 --rule inductive``
  (the baseline's select model retrained with its settings and seed, its
  file having gone with ``/tmp``). If it passes, its final (``--max-iter
  21451``) is scored as the thirty-seventh try's is, in a later session
  if this one has no time left.
  It did not pass: 93.29 / 98.39% against 93.59 / 98.50% (paired -0.30
  (margin 0.41) / -0.11 (0.25)), 1,055 CPU s for its 13,417 select
  iterations against 1,139 for the baseline's 20,000 (retrained with the
  same scores at select as its lost file); no final.
  **Thirty-ninth try, written before its training: cosine prototypes.**
  Squared Euclidean distances grow with the embedding's norm; scaled
  cosine similarity (``method_params={"distance": "cosine"}``, a learnt
  scale from 10; Oreshkin et al. 2018 found the scale decisive) compares
  directions only, which may weigh a dot or a short stroke apart from the
  ink's amount. ``select --name w40q2-boxa-el16-s4-cos-20k --n-way 40
  --n-query 2 --ink box-adaptive --max-iter 20000 --elastic '{"alpha":
  16, "sigma": 4}' --downsample strided,strided,strided,none --distance
  cosine`` (``--distance``, new), then ``confirm --name
  w40q2-boxa-el16-s4-cos-20k --baseline w40q2-boxa-el16-s4-20k --round
  confirm-thirty-ninth --run-seeds 123,124,125,126 --rule inductive``. If
  it passes, its final (``--max-iter 34170``) is scored as the
  thirty-seventh try's was, in a later session if this one has no time
  left.
  It did not pass: 93.16 / 98.70% against 93.42 / 98.86% (paired -0.26
  (margin 0.42) / -0.16 (0.27)); 1,088 CPU s for the 20,000 select
  iterations; no final.
  **Fortieth round, a measurement and not a try, written before its
  training: what more meta-training buys.** Thirty-nine tries moved the
  held-out inductive figure by less than a point each, and local matching
  or normalising the embeddings at deployment (probed again on the
  thirty-seventh try's select model and runs: squared-distance matching of
  the 16 positions 92.05% against 92.01% for the embedding, cosine 80.9-
  83.6%, power transforms 89.7-91.7%) gains nothing. If the recipe's
  accuracy is bound by its 20 CPU-minutes, more iterations show it: the
  4x4 recipe's select model meta-trained for 40,000 and 80,000 iterations
  (``--name w40q2-boxa-el16-s4-40k``, ``-80k``; 2 and 4 times the CPU time,
  beyond the budget, so neither can go to ``final``), then ``confirm
  --name w40q2-boxa-el16-s4-40k,w40q2-boxa-el16-s4-80k --baseline
  w40q2-boxa-el16-s4-20k --round scaling-fortieth --run-seeds
  127,128,129,130 --rule inductive`` (400 new held-out runs). Its
  "passed" says only which gains exceed their margins; what it reports is
  the slope: how far from 95.5% the recipe stays at 4 times its budget.
  Run again in the thirteenth session (the twelfth's runs were lost with
  it), in checkpointed segments (``--segment-minutes 20``, new): 2,073 and
  4,197 CPU s. On the 100 select runs 92.75 / 98.45% and 93.70 / 98.75%
  (20,000: 93.20 / 98.55%). Confirmed on the 400 new runs: 20,000
  iterations 93.42 / 98.70%, 40,000 93.46 / 98.81% (paired +0.04 (margin
  0.32) / +0.11 (0.25)), 80,000 **94.09** / 98.99% (+0.66 (0.33) / +0.29
  (0.27)). Four times the compute buys two thirds of a point. The
  recipe reads about 2.2 points lower on ``evaluation`` than on these
  held-out runs (the thirty-seventh try: 93.06% on its select runs, 90.90%
  on ``evaluation`` through the estimators), so 95.5% there would need
  about 97.7% here: 4.3 points above the 20,000-iteration model and 3.6
  above the 80,000-iteration one. More iterations cannot reach it within
  any budget near 20 CPU-minutes.
  **Forty-first try, written before its training: a wider Conv4 at the
  same CPU time.** Probed on the select models of 20,000 and 40,000
  iterations (``lake_fit.py``, 100 inductive runs without shifts, run
  seed 131): on the select stage's own training alphabets, whose images they
  meta-trained on, 92.65% and 92.85%, against 92.30% and 92.50% on the
  held-out alphabets. The recipe does not overfit; it underfits, and
  twice the iterations do not lift even the training alphabets, so the
  limit is the embedding's capacity to tell one alphabet's characters
  apart, not the iterations or the transfer. The fourth try's width 96
  lost at half the iterations when iterations still paid; they no longer
  do. ``select --name w40q2-boxa-el16-s4-w96 --n-way 40 --n-query 2 --ink
  box-adaptive --width 96 --cpu-budget 1175 --elastic '{"alpha": 16,
  "sigma": 4}' --downsample strided,strided,strided,none
  --segment-minutes 20`` (the probes set its iterations: 1,175 x 0.97 is
  the 1,139 CPU s of the baseline's 20,000), then ``confirm --name
  w40q2-boxa-el16-s4-w96 --baseline w40q2-boxa-el16-s4-20k --round
  confirm-forty-first --run-seeds 132,133,134,135 --rule inductive`` (131
  went to the probe). If it passes, its final (width 96 within the final
  budget) is scored as the thirty-seventh try's was, in a later session
  if this one has no time left.
  It did not pass: 11,866 iterations in 1,141 CPU s (36.8 more for the
  probes), 91.85 / 98.15% on the 100 select runs, and on the 400 new ones
  92.97 / 98.30% against 93.40 / 98.68% (paired -0.42 (margin 0.35) /
  -0.37 (0.28)): a loss beyond its margin; no final. ``lake_fit.py``
  (run seed 131, inductive without shifts, 100 runs) on the
  training alphabets against the held-out ones: width 96 92.25 / 93.05%,
  the 80,000-iteration model 93.40 / 92.30%. Neither width nor four times
  the iterations lets the embedding tell apart the characters of the
  alphabets it trained on much better than those of new ones: within an
  alphabet, the ProtoNet recipe stays near 93% at this scale.
  (``lake_finetune.py``, ``lake_compare.py``, ``lake_recon.py`` and
  ``lake_fit.py --ensemble`` hold the forty-second round: probes on the
  select runs, none of which gained enough to be given a rule and a
  confirmation; ``RESULTS.md``.)
  **Forty-second try, written before its training: large-margin
  prototypes.** The embedding underfits within an alphabet: random 40-way
  episodes are won long before two characters of one alphabet lie apart
  (on the select runs a query's squared distance to its own support image
  is 6.2 on average, to the nearest other 11.1). ProtoNet's ``margin``
  (new; Wang et al. 2018) adds ``m`` to each query's squared distance to
  its own prototype in the meta-training loss only, so an episode is won
  by that margin. In ``lake_recon.py``'s loop (6,000 iterations, 100 select
  runs without shifts) ``m = 2`` gained +0.50 (margin 0.82) and ``m = 5``
  lost 0.15 against the plain loss. ``select --name
  w40q2-boxa-el16-s4-m1-20k --n-way 40 --n-query 2 --ink box-adaptive
  --max-iter 20000 --elastic '{"alpha": 16, "sigma": 4}' --downsample
  strided,strided,strided,none --margin 1 --segment-minutes 25`` and
  ``--name w40q2-boxa-el16-s4-m2-20k ... --margin 2``, then ``confirm
  --name w40q2-boxa-el16-s4-m1-20k,w40q2-boxa-el16-s4-m2-20k --baseline
  w40q2-boxa-el16-s4-20k --round confirm-forty-second --run-seeds
  136,137,138,139 --rule inductive``. If one passes, the one with the
  larger paired inductive gain gets a final (``--max-iter 34170``, its CPU
  time reported as measured), scored as the thirty-seventh try's was, in
  a later session if this one has no time left.
  Neither passed: 1,063 and 1,065 CPU s for the 20,000 iterations (the
  two side by side), 92.75 / 98.20% and 92.7 / 98.3% on the 100 select
  runs; on the 400 new ones 93.01 / 98.61% (``m = 1``) and 93.28 / 98.68%
  (``m = 2``) against 93.25 / 98.71% (paired -0.24 (margin 0.34) / -0.10
  (0.23) and +0.03 (0.36) / -0.04 (0.25)); no final. The margin neither
  helps nor harms: an episode already won by a wide margin stays as it
  was, and the within-alphabet pairs are too rare in random episodes for
  a margin on them to move the embedding.
  **Forty-third try, written before its training: a deeper network at
  the same CPU time.** Width (the forty-first try), the final map's size
  (thirty-seventh, thirty-eighth), the distance, margin, loss and
  deployment were varied; depth never was (the Conv4's 4 blocks). The
  embedding underfits within an alphabet even on its training alphabets,
  and more iterations buy little (4x: +0.66), so capacity of another kind
  is the question. ``--downsample
  strided,strided,strided,none,none,none`` (new: a ``downsample`` sequence
  of any length sets the number of blocks) adds two blocks on the 4x4 map.
  Priced by ``conv4_cost.py --candidates final-4x4,deep-4x4 --out
  conv4_cost_depth`` (alternated, one thread) before training: ``select
  --name w40q2-boxa-el16-s4-deep-eq --n-way 40 --n-query 2 --ink
  box-adaptive --max-iter N --elastic '{"alpha": 16, "sigma": 4}'
  --downsample strided,strided,strided,none,none,none --segment-minutes
  25`` with ``N = 20000 x`` (the 4x4 model's ms an iteration / the deeper
  one's), rounded to the hundred, then ``confirm --name
  w40q2-boxa-el16-s4-deep-eq --baseline w40q2-boxa-el16-s4-20k --round
  confirm-forty-third --run-seeds 140,141,142,143 --rule inductive``. If it
  passes, it gets a final (``--max-iter 34170`` times the same ratio, its
  CPU time reported as measured), in a later session if this one has no
  time left.
  It did not pass: priced at 72.5 against 56.1 ms an iteration (15,500
  iterations), 1,153 CPU s as measured (two segments, beside other jobs);
  93.00 / 98.50% on the 100 select runs (93.20 / 98.55% for the 4x4
  model); on the 400 new ones 92.82 / 98.49% against 93.12 / 98.57%
  (paired -0.30 (margin 0.40) / -0.09 (0.32)); no final. Two more blocks
  on the 4x4 map do not make up for a fifth fewer iterations.
  **Forty-fifth try, written before its training: Feature Map
  Reconstruction Networks.** The errors left are near misses, characters
  told apart by a dot or a short stroke, which the embedding compares as
  one flattened map; matching a ProtoNet-trained map location by location
  at deployment lost (the thirty-sixth try), but FRN (Wertheimer et al.
  2021, new: ``method="frn"``, proposed for fine-grained classes) trains
  the map for it: each class's support locations reconstruct each query
  location by ridge regression, in closed form. Probed first (no rule;
  ``/tmp`` script, the 4x4 recipe, 100 select runs of run seed 0, without
  / with the shifts): 1,500 iterations 88.00 / 89.65% against ProtoNet's
  86.00 / 88.05% (63 against 55 CPU s, side by side); 6,000 iterations
  91.10 / 92.15% against 89.85 / 91.40% (240 against 216 CPU s, side by
  side: 1.11x an iteration); FRN on a 7x7 map (``--downsample
  strided,strided,none,none``) 89.85 / 90.40% at 1,500 iterations in 90
  CPU s. Two candidates at the 4x4 ProtoNet's CPU time, priced by those
  probes: ``select --name w40q2-boxa-el16-s4-frn-eq --method frn --n-way
  40 --n-query 2 --ink box-adaptive --elastic '{"alpha": 16, "sigma": 4}'
  --downsample strided,strided,strided,none --max-iter 18000`` (20,000 x
  216 / 240) and ``--name w40q2-boxa-el16-s7-frn-eq ... --downsample
  strided,strided,none,none --max-iter 12200`` (20,000 x 55 / 90, rounded
  to the hundred), side by side, then ``confirm --name
  w40q2-boxa-el16-s4-frn-eq,w40q2-boxa-el16-s7-frn-eq --baseline
  w40q2-boxa-el16-s4-20k --round confirm-forty-fifth --run-seeds
  148,149,150,151 --rule inductive`` (FRN deploys no prototypes, so PT-MAP
  refuses it and the inductive+shifts gain decides). Of those that pass,
  the larger paired gain gets a final (``--max-iter 34170`` times its
  ratio, its CPU time reported as measured), scored through the
  estimators with ``test_time_shifts=(1, 2, 3)`` (test-time turns refuse
  FRN) on ``evaluation`` beside the 4x4 ProtoNet final's figures with and
  without the turns.
  Neither passed: 866 and 830 CPU s for the 18,000 and 12,200
  iterations against 855 for the baseline's 20,000 (retrained this
  session with its settings and seed; the three side by side on the two
  cores); on the 100 select runs 93.55% (4x4) and 93.20% (7x7) against
  93.00% inductive+shifts; on the 400 new ones 92.91% and 93.45% against
  93.15% (paired -0.24 (margin 0.35) and +0.30 (0.44)); no final. FRN's
  lead over ProtoNet at 1,500 and 6,000 iterations (+2.0 and +1.25
  points without the shifts) is gone at the CPU time of 20,000: it learns
  faster, not further.
- ``final``: meta-train on all of ``background`` within the 2,400-CPU-second
  budget (``lake_runs.probe_budget``'s two probes, augmentation included),
  score 100 runs (also with TIM+shifts, ``lake_library.py``'s held-out
  choice of transductive deployment) and 300 random episodes on
  ``evaluation``.

    python benchmarks/lake_augment.py select --name lr4-28 --max-iter 5517
    python benchmarks/lake_augment.py select --name aff10-28 --max-iter 5517 \\
        --affine '{"degrees": 10, "translate": 0.1, "scale": [0.9, 1.1]}'
    python benchmarks/lake_augment.py select --name w60q1-20k --max-iter 20000 \\
        --n-way 60 --n-query 1
    python benchmarks/lake_augment.py confirm --name w60q1-20k,w40q2-20k \\
        --baseline lr4-28-20k
    python benchmarks/lake_augment.py select --name w40q2-d8-20k --max-iter 20000 \\
        --n-way 40 --n-query 2 --class-augmentation dihedral
    python benchmarks/lake_augment.py confirm --name w40q2-d8-20k \\
        --baseline lr4-28-20k --reference w40q2-20k --round confirm-tenth \\
        --run-seeds 4,5,6,7
    python benchmarks/lake_augment.py final --name w40q2-full --n-way 40 \\
        --n-query 2
    python benchmarks/conv4_cost.py
    python benchmarks/lake_augment.py select --name w40q2-mp1 --n-way 40 \\
        --n-query 2 --downsample maxpool,strided,strided,strided --max-iter N
    python benchmarks/lake_augment.py confirm --name w40q2-mp1,w40q2-mp4 \\
        --baseline w40q2-20k --round confirm-seventeenth \\
        --run-seeds 32,33,34,35 --rule paired
    python benchmarks/lake_augment.py final --name aff10-28-full \\
        --affine '{"degrees": 10, "translate": 0.1, "scale": [0.9, 1.1]}'

Writes ``results/lake_augment.{json,md}``; models go to
``/tmp/models/lake_<stage>_<name>.safetensors`` (not in git). A ``select``
or ``final`` whose meta-training finished (the model and its ledger on
disk) is scored again without retraining.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import lake_runs
import numpy as np
import torch
from omniglot_methods import paired, random_episodes, score, within_alphabet_runs

from skmeta import MetaModel
from skmeta.augmentation import AffineAugmentation, ElasticAugmentation
from skmeta.datasets import ink_box, load_omniglot
from skmeta.meta.algorithms import ALGORITHMS
from skmeta.meta.augment import describe_augmentation, make_augmentation

HERE = Path(__file__).parent
RESULTS = HERE / "results"
SHIFTS = (1, 2, 3)
CONFIRM_SEEDS = (1, 2, 3)  # run seeds of the confirmation; select's were 0
DEPLOYMENTS = {
    "inductive": (None, None),
    "inductive+shifts": (None, SHIFTS),
    "ptmap+shifts": ("ptmap", SHIFTS),
    "tim+shifts": ("tim", SHIFTS),
}


def augmentation(args) -> AffineAugmentation | ElasticAugmentation | list | None:
    """The run's augmentation, from ``--affine`` and ``--elastic`` (JSON
    keyword arguments of AffineAugmentation and ElasticAugmentation); with
    both, the affine map then the elastic distortions (a list)."""
    steps = []
    if args.affine is not None:
        params = json.loads(args.affine)
        if "scale" in params:
            params["scale"] = tuple(params["scale"])
        steps.append(AffineAugmentation(**params))
    if args.elastic is not None:
        steps.append(ElasticAugmentation(**json.loads(args.elastic)))
    return steps if len(steps) > 1 else (steps[0] if steps else None)


def ink_rows(
    split: str, data_home: str, ink: str, image_size: int, target
) -> np.ndarray:
    """The split's rows with each character scaled to a box and centred on its
    ink (``ink="box"``) or only centred (``"com"``), from the 105 px
    originals (``skmeta.datasets.ink_box``, what ``load_omniglot(...,
    ink_box=True)`` returns for ``"box"``), in ``load_omniglot``'s row order.
    ``"box-adaptive"``: with ``aspect="adaptive"`` (``load_omniglot(...,
    ink_aspect="adaptive")``); ``-stroke``: also ``stroke_width=1.6`` (the
    rows cached beside the models); ``-22``, ``-24``: a box of 22 or 24 of
    the 28 pixels; ``-deskew``, ``-deskew50``: the slant removed, or half
    of it (``deskew=1.0``, ``0.5``)."""
    raw = np.load(Path(data_home) / f"{split}_105.npz")
    if not np.array_equal(raw["labels"], target):
        raise SystemExit(f"{split}_105.npz's rows are not in load_omniglot's order")
    share = ink.rsplit("-", 1)[-1]  # box-adaptive-22: 22 of 28 pixels
    box = None if ink == "com" else (int(share) if share.isdigit() else 20) / 28
    aspect = "adaptive" if ink.startswith("box-adaptive") else "keep"
    stroke = 1.6 if ink.endswith("-stroke") else None
    deskew = {"deskew": 1.0, "deskew50": 0.5}.get(share, 0.0)
    cache = lake_runs.MODELS / f"ink_rows_{split}_{ink}_{image_size}.npy"
    if stroke is not None and cache.exists():  # about 7 CPU minutes a split
        return np.load(cache)
    images = ink_box(
        raw["images"],
        image_size,
        box=box,
        aspect=aspect,
        stroke_width=stroke,
        deskew=deskew,
    )
    rows = images.reshape(len(images), -1).astype(np.float32) / np.float32(255)
    if stroke is not None:
        lake_runs.MODELS.mkdir(parents=True, exist_ok=True)
        np.save(cache, rows)
    return rows


def data(
    stage: str, data_home: str, seed: int, image_size: int = 28, ink: str = "none"
):
    """Meta-training rows and the stage's test rows, alphabets and drawers,
    images of `image_size` px (28: the data file's own rows; others Lanczos
    resampled from the 105 px originals by ``load_omniglot``); with `ink`
    ``"box"`` or ``"com"``, each character scaled and centred on its ink, or
    only centred (:func:`ink_rows`)."""
    background = load_omniglot("background", data_home=data_home, image_size=image_size)
    if ink != "none":
        background.data = ink_rows(
            "background", data_home, ink, image_size, background.target
        )
    X, y, groups = background.data, background.target, background.groups
    if stage == "select":
        raw = np.load(Path(data_home) / "background.npz")
        test = np.isin(groups, lake_runs.held_out_alphabets(groups, y, seed))
        train = (X[~test], y[~test], groups[~test])
        return train, (X[test], y[test], groups[test], raw["drawer"][test])
    evaluation = load_omniglot("evaluation", data_home=data_home, image_size=image_size)
    if ink != "none":
        evaluation.data = ink_rows(
            "evaluation", data_home, ink, image_size, evaluation.target
        )
    raw = np.load(Path(data_home) / "evaluation.npz")
    if not np.array_equal(raw["labels"], evaluation.target):
        raise SystemExit("the data file's rows are not in load_omniglot's order")
    test = (evaluation.data, evaluation.target, evaluation.groups, raw["drawer"])
    return (X, y, groups), test


def finished_model(path: Path) -> tuple[MetaModel | None, dict | None]:
    """The model at `path` and its training record from the ledger beside it,
    when its meta-training finished there (a stage that failed after
    training is scored again without retraining); else ``(None, None)``."""
    ledger_path = Path(str(path).replace(".safetensors", ".ledger.json"))
    if not (path.exists() and ledger_path.exists()):
        return None, None
    ledger = json.loads(ledger_path.read_text())
    if not ledger["segments"] or not ledger["segments"][-1]["done"]:
        return None, None
    print(f"meta-trained before: {path}", flush=True)
    return MetaModel.load(path), lake_runs.ledger_training(ledger, threads=1)


def augmentation_cost(aug, n_rows: int, size: int = 28, repeats: int = 200) -> float:
    """CPU milliseconds of one augmentation of `n_rows` images of `size` px."""
    if aug is None:
        return 0.0
    fn = make_augmentation(aug, (1, size, size), torch.zeros(1), torch.ones(1))
    images = torch.rand(n_rows, 1, size, size)
    tic = time.process_time()
    for _ in range(repeats):
        fn(images)
    return 1e3 * (time.process_time() - tic) / repeats


def evaluate(model, test, args) -> dict:
    X, y, groups, drawer = test
    episodes = {
        "lake": within_alphabet_runs(y, groups, drawer, args.runs, args.seed),
        "20w1s": random_episodes(y, 20, 1, args.episodes, args.seed),
        "5w1s": random_episodes(y, 5, 1, args.episodes, args.seed),
    }
    out = {}
    for key, eps in episodes.items():
        for deployment, (transductive, shifts) in DEPLOYMENTS.items():
            if key != "lake" and transductive is not None:
                continue  # transductive on the Lake runs only (s per episode)
            if transductive is not None and not takes_transductive(model):
                continue  # e.g. FEAT: its adapted prototypes are its deployment
            if transductive == "tim" and args.stage == "select":
                continue  # added for final (lake_library's held-out choice)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                s = score(model, transductive, X, y, eps, shifts)
            out[f"{key} {deployment}"] = s
            print(
                f"  {key} {deployment}: {100 * s['mean']:.2f} ± "
                f"{100 * s['ci95']:.2f}% ({s['n_episodes']})",
                flush=True,
            )
    return out


def takes_transductive(model) -> bool:
    """Whether the model's method deploys nearest prototypes, so that the
    transductive methods apply (FEAT's adapted prototypes: not)."""
    return ALGORITHMS[model.config["method"]].prototype_deployment


def runs_of(y, groups, drawer, seeds, n_runs: int) -> list:
    """Lake runs (``within_alphabet_runs``) of `n_runs` for each run seed."""
    return [
        run
        for seed in seeds
        for run in within_alphabet_runs(y, groups, drawer, n_runs, seed)
    ]


def chosen_transductive() -> dict:
    """``lake_transductive.py``'s held-out choice of settings, by method."""
    report = json.loads((RESULTS / "lake_transductive.json").read_text())
    return {method: section["select"]["chosen"] for method, section in report.items()}


def confirm(args) -> dict:
    """The confirmation round: the baseline and the candidates (``--name``,
    comma-separated select models) on the runs of :data:`CONFIRM_SEEDS`,
    inductive+shifts and PT-MAP+shifts at ``lake_transductive.py``'s chosen
    settings, and the rule's verdict."""
    test = {(28, "none"): data("select", args.data_home, args.seed)[1]}
    _, y, groups, drawer = test[28, "none"]
    report = json.loads((RESULTS / "lake_augment.json").read_text())
    run_seeds = tuple(int(x) for x in args.run_seeds.split(","))
    runs = runs_of(y, groups, drawer, run_seeds, args.runs)
    deployments = {
        "inductive+shifts": (None, None),
        "ptmap+shifts": ("ptmap", chosen_transductive()["ptmap"]),
    }
    candidates = args.name.split(",")
    references = [n for n in args.reference.split(",") if n]
    names = [args.baseline] + candidates + references
    scores, per_run = {}, {}
    models = {
        name: MetaModel.load(lake_runs.MODELS / f"lake_select_{name}.safetensors")
        for name in names
    }
    without = [n for n, m in models.items() if not takes_transductive(m)]
    if without and (args.rule != "inductive" or args.baseline in without):
        raise SystemExit(
            f"{', '.join(without)}: their method refuses PT-MAP; only --rule "
            "inductive compares such candidates (on the inductive figure), and "
            "the baseline must take PT-MAP"
        )
    for name in names:
        model = models[name]
        size = model.input_shape[-1]  # each model is scored on its own size
        if f"select/{name}" not in report:
            raise SystemExit(f"no select record of {name} in lake_augment.json")
        settings = report[f"select/{name}"]["settings"]
        key = size, settings.get("ink", "none")  # and on its own ink normalisation
        if key not in test:  # the same rows, runs and drawers, resampled
            test[key] = data("select", args.data_home, args.seed, *key)[1]
        X = test[key][0]
        for deployment, (transductive, params) in deployments.items():
            if transductive is not None and not takes_transductive(model):
                continue  # the rule then reads the inductive figure alone
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                s = score(model, transductive, X, y, runs, SHIFTS, params, True)
            per_run[name, deployment] = s.pop("per_episode")
            scores.setdefault(name, {})[deployment] = s
            print(f"  {name} {deployment}: {100 * s['mean']:.2f}%", flush=True)
    base = scores[args.baseline]
    paired_gains = {
        name: {
            d: paired(per_run[name, d], per_run[args.baseline, d])
            for d in deployments
            if (name, d) in per_run
        }
        for name in candidates
    }
    if args.rule == "inductive":
        # the inductive figure gains significantly, PT-MAP+shifts does not
        # fall significantly (a method without PT-MAP: the inductive alone)
        passed = [
            name
            for name in candidates
            if paired_gains[name]["inductive+shifts"]["gain"]
            > paired_gains[name]["inductive+shifts"]["margin"]
            and (
                "ptmap+shifts" not in paired_gains[name]
                or paired_gains[name]["ptmap+shifts"]["gain"]
                > -paired_gains[name]["ptmap+shifts"]["margin"]
            )
        ]
    elif args.rule == "paired":
        # the Lake figure (PT-MAP+shifts) gains significantly, the inductive
        # one does not fall
        passed = [
            name
            for name in candidates
            if paired_gains[name]["ptmap+shifts"]["gain"]
            > paired_gains[name]["ptmap+shifts"]["margin"]
            and paired_gains[name]["inductive+shifts"]["gain"] >= 0
        ]
    else:
        passed = [
            name
            for name in candidates
            if all(scores[name][d]["mean"] > base[d]["mean"] + 0.01 for d in base)
            and all(
                scores[name][d]["mean"] >= scores[ref][d]["mean"]
                for ref in references
                for d in deployments
            )
        ]
    return {
        "baseline": args.baseline,
        "references": references,
        "run_seeds": list(run_seeds),
        "runs": len(runs),
        "ptmap_params": deployments["ptmap+shifts"][1],
        "rule": args.rule,
        "without_ptmap": without,
        "scores": scores,
        "paired": paired_gains,
        "passed": passed,
        "chosen": max(
            passed,
            key=(
                (lambda n: scores[n]["inductive+shifts"]["mean"])
                if args.rule == "inductive"
                else (lambda n: sum(s["mean"] for s in scores[n].values()))
            ),
            default=None,
        ),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("stage", choices=["select", "confirm", "final"])
    ap.add_argument("--name", required=True)
    ap.add_argument("--affine", default=None, help="AffineAugmentation kwargs, JSON")
    ap.add_argument("--elastic", default=None, help="ElasticAugmentation kwargs, JSON")
    ap.add_argument("--max-iter", type=int, default=None)
    ap.add_argument("--cpu-budget", type=float, default=2400.0)
    ap.add_argument(
        "--segment-minutes",
        type=float,
        default=None,
        help="meta-train in segments of at most this many wall minutes, each "
        "resuming from the last one's checkpoint in /tmp/models; rerun the "
        "command until it reports (a killed run resumes too, the killed "
        "segment's CPU time then missing from the ledger)",
    )
    ap.add_argument("--lr", type=float, default=4e-3)
    ap.add_argument("--n-way", type=int, default=20)
    ap.add_argument("--n-query", type=int, default=5)
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--episodes", type=int, default=300)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data-home", default=str(lake_runs.DATA))
    ap.add_argument("--baseline", default="lr4-28-20k", help="confirm's baseline")
    ap.add_argument(
        "--reference",
        default="",
        help="confirm: models a candidate must not lose to (comma-separated)",
    )
    ap.add_argument(
        "--run-seeds",
        default=",".join(map(str, CONFIRM_SEEDS)),
        help="confirm: the held-out runs' seeds",
    )
    ap.add_argument("--round", default="confirm", help="confirm: the record's key")
    ap.add_argument(
        "--rule",
        default="points",
        choices=["points", "paired", "inductive"],
        help="confirm: more than 1 point on both deployments (points), a "
        "PT-MAP+shifts gain beyond 1.96 paired SE and no inductive loss "
        "(paired), or an inductive+shifts gain beyond 1.96 paired SE and no "
        "significant PT-MAP+shifts loss (inductive)",
    )
    ap.add_argument(
        "--width", type=int, default=None, help="Conv4's channels (default 64)"
    )
    ap.add_argument(
        "--downsample",
        default=None,
        help="Conv4's downsampling per block, comma-separated (e.g. "
        "maxpool,strided,strided,strided); default the strided Conv4",
    )
    ap.add_argument(
        "--image-size",
        type=int,
        default=28,
        help="input side in px (confirm reads each model's own)",
    )
    ap.add_argument(
        "--ink",
        default="none",
        choices=[
            "none",
            "com",
            "box",
            "box-adaptive",
            "box-adaptive-stroke",
            "box-adaptive-22",
            "box-adaptive-24",
            "box-adaptive-deskew",
            "box-adaptive-deskew50",
        ],
        help="each character scaled to a box and centred on its ink (box; "
        "box-adaptive: wide and tall ones widened along their short side; "
        "-stroke: redrawn with strokes 1.6 px wide; -22, -24: a box of 22 or "
        "24 of 28 px, not 20; -deskew, -deskew50: the slant removed, or "
        "half of it), "
        "only centred (com), or as drawn (none); skmeta.datasets.ink_box",
    )
    ap.add_argument(
        "--within",
        type=float,
        default=0.0,
        help="share of episodes drawn within one alphabet (lake_runs.py's)",
    )
    ap.add_argument(
        "--class-augmentation",
        default="rot90",
        choices=["rot90", "dihedral"],
        help="the extractor's class_augmentation",
    )
    ap.add_argument(
        "--distance",
        default="euclidean",
        choices=["euclidean", "cosine"],
        help="ProtoNet's distance (cosine: with its learnt scale)",
    )
    ap.add_argument(
        "--margin",
        type=float,
        default=0.0,
        help="ProtoNet's margin: large-margin meta-training (0: none)",
    )
    ap.add_argument(
        "--method",
        default="protonet",
        choices=["protonet", "feat", "frn"],
        help="the meta-learning method (feat: prototypes adapted by "
        "self-attention; frn: feature map reconstruction; inductive "
        "deployments only)",
    )
    ap.add_argument(
        "--balance",
        type=float,
        default=None,
        help="FEAT's contrastive regulariser weight (with --method feat; "
        "default: FEAT's own, 0)",
    )
    args = ap.parse_args()
    if args.method != "protonet" and (args.margin or args.distance != "euclidean"):
        ap.error(
            f"--margin and --distance are ProtoNet's; --method {args.method} "
            "refuses them"
        )
    if args.method != "feat" and args.balance is not None:
        ap.error("--balance is FEAT's; give it with --method feat")
    training_options = (
        args.method != "protonet",
        args.balance is not None,
        args.margin != 0.0,
        args.distance != "euclidean",
    )
    if args.stage == "confirm" and any(training_options):
        ap.error(
            "confirm scores the select models as they were trained; "
            "--method, --balance, --margin and --distance are select's and final's"
        )
    torch.set_num_threads(1)
    if args.stage == "confirm":
        return update(args.round, confirm(args))
    aug = augmentation(args)
    # lake_runs.train's settings: its recipe, with this run's augmentation.
    recipe = argparse.Namespace(
        stage=args.stage,
        name=args.name,
        within=args.within,
        image_size=args.image_size,
        width=args.width,
        n_way=args.n_way,
        n_query=args.n_query,
        lr=args.lr,
        cpu_budget=args.cpu_budget,
        max_iter=args.max_iter,
        probe_iter=60,
        seed=args.seed,
        segment_minutes=args.segment_minutes,
        augmentation=aug,
        class_augmentation=args.class_augmentation,
        downsample=None if args.downsample is None else args.downsample.split(","),
        distance=args.distance,
        margin=args.margin,
        method=args.method,
        balance=args.balance,
    )
    train, test = data(args.stage, args.data_home, args.seed, args.image_size, args.ink)
    path = lake_runs.MODELS / f"lake_{args.stage}_{args.name}.safetensors"
    meta_model, training = finished_model(path)
    if meta_model is None:
        model, training = lake_runs.train(recipe, *train)
        if model is None:  # a segment ended; the next run resumes it
            return None
        lake_runs.MODELS.mkdir(exist_ok=True)
        meta_model = model.meta_model_
        meta_model.save(path)
    rows = args.n_way * (1 + args.n_query)  # a meta-batch: 1 shot + queries
    training["augmentation_ms_per_batch"] = augmentation_cost(
        aug, rows, args.image_size
    )
    record = {
        "settings": {
            **vars(args),
            "augmentation": (
                describe_augmentation(aug) if isinstance(aug, list) else repr(aug)
            ),
        },
        "training": training,
        "model": str(path),
        "scores": evaluate(meta_model, test, args),
    }
    update(f"{args.stage}/{args.name}", record)


def update(key: str, record: dict) -> None:
    """Add `record` to the report under `key`, read and written under a file
    lock: select runs started side by side end at about the same time."""
    out = RESULTS / "lake_augment.json"
    with lake_runs.report_lock("lake_augment"):
        report = json.loads(out.read_text()) if out.exists() else {}
        report[key] = record
        write(report)


def write(report: dict) -> None:
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "lake_augment.json").write_text(json.dumps(report, indent=1))
    (RESULTS / "lake_augment.md").write_text(table(report))
    print(table(report))


def table(report: dict) -> str:
    keys = [f"lake {d}" for d in DEPLOYMENTS] + [
        f"{task} {d}" for task in ("20w1s", "5w1s") for d in list(DEPLOYMENTS)[:2]
    ]
    lines = [
        "Affine augmentation during meta-training (`benchmarks/lake_augment.py`): "
        "the lr 4e-3 recipe of `lake_runs.py` with "
        "`augmentation=AffineAugmentation(...)`. *select*: 25 background "
        "alphabets, fixed iterations, scored on 5 held-out ones; *final*: all of "
        "background within 2,400 CPU s, scored on evaluation. +shifts: "
        "`test_time_shifts=(1, 2, 3)`. Episodes: meta-training's, 1 shot. "
        "Accuracy in % ± 95% CI (100 Lake runs, 300 random episodes); ms: CPU "
        "time of one augmentation of a meta-batch (120 images in every row).",
        "",
        "| stage/name | episodes | augmentation | it | CPU s | ms | "
        + " | ".join(keys)
        + " |",
        "|---|---|---|---|---|---|" + "---|" * len(keys),
    ]
    for name, r in report.items():
        if "/" not in name:  # a confirm round, not a stage/name row
            continue
        t, s = r["training"], r["scores"]
        cells = [
            f"{100 * s[k]['mean']:.1f} ± {100 * s[k]['ci95']:.1f}" if k in s else ""
            for k in keys
        ]
        parts = [r["settings"]["affine"]]  # the affine map, then elastic
        if r["settings"].get("elastic"):
            parts.append(f"elastic {r['settings']['elastic']}")
        aug = " then ".join(p for p in parts if p) or "none"
        if r["settings"].get("class_augmentation", "rot90") != "rot90":
            aug += f", class_augmentation={r['settings']['class_augmentation']}"
        if r["settings"].get("ink", "none") != "none":
            aug += f", --ink {r['settings']['ink']}"
        if r["settings"].get("downsample"):
            aug += f", --downsample {r['settings']['downsample']}"
        if r["settings"].get("distance", "euclidean") != "euclidean":
            aug += f", --distance {r['settings']['distance']}"
        if r["settings"].get("margin", 0.0):
            aug += f", --margin {r['settings']['margin']:g}"
        if r["settings"].get("method", "protonet") != "protonet":
            aug += f", --method {r['settings']['method']}"
            if r["settings"].get("balance") is not None:
                aug += f" --balance {r['settings']['balance']:g}"
        way, query = (
            r["settings"].get(k, d) for k, d in (("n_way", 20), ("n_query", 5))
        )
        lines.append(
            f"| {name} | {way}-way, {query} queries | {aug} | {t['iterations']} | "
            f"{t['cpu_seconds']:.0f} | "
            f"{t['augmentation_ms_per_batch']:.1f} | " + " | ".join(cells) + " |"
        )
    for key in sorted(k for k in report if "/" not in k):
        lines += confirm_table(key, report[key])
    return "\n".join(lines) + "\n"


def confirm_table(key: str, r: dict) -> list[str]:
    references = r.get("references", [])
    also = (
        f", and no loss to {', '.join(f'`{n}`' for n in references)} on either"
        if references
        else ""
    )
    rule = {
        "paired": "a PT-MAP+shifts gain over "
        f"`{r['baseline']}` beyond 1.96 SE of the paired per-run differences, "
        "and no inductive+shifts loss",
        "inductive": "an inductive+shifts gain over "
        f"`{r['baseline']}` beyond 1.96 SE of the paired per-run differences, "
        "and no PT-MAP+shifts loss beyond it (for a method that takes "
        "PT-MAP); the best inductive+shifts mean chosen",
    }.get(r.get("rule"), f"more than 1 point over `{r['baseline']}` on both{also}")
    lines = [
        "",
        f"**{key}**: {r['runs']} held-out runs (run seeds "
        f"{', '.join(map(str, r['run_seeds']))}), PT-MAP at "
        f"{r['ptmap_params']}; rule: {rule}. Passed: "
        f"{', '.join(r['passed']) or 'none'}; chosen: {r['chosen'] or 'none'}.",
        "",
        "| select model | inductive+shifts | ptmap+shifts | paired gains (margins) |",
        "|---|---|---|---|",
    ]
    deployments = ("inductive+shifts", "ptmap+shifts")
    for name, s in r["scores"].items():
        cells = [
            f"{100 * s[d]['mean']:.2f} ± {100 * s[d]['ci95']:.2f}"
            if d in s
            else "(refused by its method)"
            for d in deployments
        ]
        gains = r.get("paired", {}).get(name)
        cells.append(
            " / ".join(
                f"{100 * gains[d]['gain']:+.2f} ({100 * gains[d]['margin']:.2f})"
                if d in gains
                else "-"
                for d in deployments
            )
            if gains
            else ""
        )
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


if __name__ == "__main__":
    main()
