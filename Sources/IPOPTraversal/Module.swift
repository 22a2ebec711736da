// IPOPTraversal: see the files of this module.
