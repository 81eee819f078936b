//! DCAT-AP 3.0 documents of maillage records.
