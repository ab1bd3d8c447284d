"""The tags tbpipe writes, named so that TensorBoard opens on the lesson.

TensorBoard's TIME SERIES and SCALARS tabs group tags by the part before the first `/`
(a tag without one is a group of its own), order the groups by their tags' natural sort
order, and open only the first two. So the lesson's scalars form the groups `k` (the
estimate `k` and its error `k/error` = |k - k_true|) and `loss` (train and test, one
chart: the same tag in both runs), and everything else sorts after `loss`:

    k          k, k/error                     SCALARS, open
    loss       loss (train and test)          SCALARS, open
    outputs    outputs/<name>                 the model's activations (HISTOGRAMS)
    parameters parameters/<variable>          weights and biases (HISTOGRAMS)
    plots      plots/fit                      the fit (IMAGES)
    residuals  residuals (train and test)     HISTOGRAMS

HISTOGRAMS and DISTRIBUTIONS open their own first two groups, `outputs` and `parameters`:
the hidden layer's output and its N(0, 1) weights, the tutorial's distribution lesson.

No TensorFlow here: the sweep summary (loaded before any job runs) reads these names.
"""

K = "k"
K_ERROR = "k/error"
LOSS = "loss"
PLOTS = "plots/"  # the task's pictures: plots/fit, plots/predicted_vs_true, ...
FIT = PLOTS + "fit"
RESIDUALS = "residuals"
#: prefixes of the histogram tags: `outputs/hidden`, `parameters/mlp/hidden/weights`
OUTPUTS = "outputs/"
PARAMETERS = "parameters/"
