"""The student: a causal LM (:mod:`ray_asd.models`) that also LoRA-finetunes and gives BADGE
gradient embeddings.

Modules: ``model`` (:class:`Student`), ``training`` (the loop, ``TrainStats``), ``gradients``
(BADGE's maths), ``protocol`` (``StudentModel``, what the loop needs of a student). Nothing is
imported here, so ``ray_asd.student.protocol`` stays free of torch.
"""
