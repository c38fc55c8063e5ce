"""The one pipeline every command runs, whatever the data:

    prepare.py     the modality loads, profiles, splits, plans, fits its encoder, builds
    supervise.py   training under the doctor (pre-flight, live monitors, auto-repair)
    run.py         the run directory: train, score and save; load a finished run
    crossval.py    k-fold cross-validation (nnrecipe cv)
    experiments.py paired hypothesis experiments (nnrecipe experiment)
    study.py       the Optuna search over plans, then the best retrained (nnrecipe tune)
"""
