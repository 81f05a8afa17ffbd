"""`make mutation`: how strong the tests are, measured by mutants they kill (docs/TEST-STRENGTH.md).

Four areas, each mutant run against the tests that cover it (a mutant is killed when any of them fails):

- ``lambdas``, ``workflows`` and ``emulator`` (the moto patches, ``taskrail/local/services/``): Python mutants
  made by cosmic-ray (:mod:`bench.mutation.python`);
- ``asl``: mutants of the generated state machine definitions (:mod:`bench.mutation.asl`), run by
  ``tests/workflows`` through ``TASKRAIL_ASL_DIR``;
- ``template``: mutants of the synthesized CloudFormation template (:mod:`bench.mutation.template`), run by
  ``tests/infra`` (and the tests that provision from it) through ``TASKRAIL_TEMPLATE``.

Everything runs in a scratch copy of the committed tree (``git archive HEAD``): the working tree, ``asl/`` and
``cdk.out`` are never touched.
"""
