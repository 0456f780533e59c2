"""The listener's trained text models: their features, artefacts, training and benchmark.

Runtime needs only numpy: an artefact is a compressed ``.npz`` holding a vocabulary, idf
weights and logistic-regression coefficients, so no pickle is loaded and no scikit-learn
version has to match. Training (``services/listener/training/listener_train.py``) and the
benchmarks (``services/listener/bench/``), outside the installed package, use scikit-learn
and the labelled datasets.
"""
