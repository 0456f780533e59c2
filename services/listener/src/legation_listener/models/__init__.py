"""The listener's trained text models: their features, artefacts, training and benchmark.

Runtime needs only numpy: an artefact is a compressed ``.npz`` holding a vocabulary, idf
weights and logistic-regression coefficients, so no pickle is loaded and no scikit-learn
version has to match. Training (:mod:`legation_listener.models.train`) and the benchmark
(:mod:`legation_listener.models.bench`) use scikit-learn and the labelled datasets.
"""
