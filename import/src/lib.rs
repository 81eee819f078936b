//! Imports: what collectivities already publish, read into record drafts.
