// IPOPSignal: see the files of this module.
