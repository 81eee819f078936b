//! The members view (issue 23): the collectivities a chef de file (or a
//! committee) gathers, from the scope its memberships give it (else its own
//! territory), each with whether it runs a node this node's trust accepts
//! and what this node holds of it.
//!
//! Reads the reference list, trust and the search index's counts; writes
//! nothing.

use std::collections::BTreeSet;

use maillage_record::Siren;
use maillage_record::model::MembershipRole;
use maillage_record::territory::{self, Place};
use maillage_record::vocab::OrganisationKind;

use crate::node::Node;
use crate::search::{OrgActivity, SearchError};
use crate::viewer::Viewer;

/// Where a scope comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScopeFrom {
    /// The memberships naming this node's key as a chef de file or a
    /// committee.
    Membership,
    /// No such membership: this node's own territory.
    OwnTerritory,
    /// The territory the caller asked for.
    Asked,
}

impl ScopeFrom {
    pub fn as_str(self) -> &'static str {
        match self {
            ScopeFrom::Membership => "membership",
            ScopeFrom::OwnTerritory => "own_territory",
            ScopeFrom::Asked => "asked",
        }
    }
}

/// One member of a scope.
#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    pub siren: String,
    pub name: String,
    /// None: an organisation the reference list does not hold (a scope may
    /// name any SIREN).
    pub kind: Option<OrganisationKind>,
    /// A key this node's trust accepts now speaks for it.
    pub runs_node: bool,
    /// Its datasets, projects and reuses this node holds (its own, and
    /// those published on its behalf), how many this node signed (it
    /// publishes through this node), and when the last was received.
    pub activity: OrgActivity,
}

#[derive(Debug, Clone)]
pub struct Members {
    pub from: ScopeFrom,
    pub scope: Vec<String>,
    pub members: Vec<Member>,
}

#[derive(Debug, thiserror::Error)]
pub enum MembersError {
    #[error("{0}")]
    BadRequest(String),
    #[error(transparent)]
    Search(#[from] SearchError),
}

/// Members listed at most (a région holds some 4,500 communes; the whole
/// reference list is 36,000).
const MAX_MEMBERS: usize = 50_000;

/// This node's scope: what the current memberships naming its key as a
/// chef de file or a committee say (one with no scope: the territory of its
/// SIREN); none if it has no such membership.
pub fn scope(node: &Node) -> Vec<String> {
    let now = maillage_record::now_ms();
    let mut scope = BTreeSet::new();
    for e in node.trust().endorsements(&node.public_key(), now) {
        if !matches!(
            e.role,
            MembershipRole::ChefDeFile | MembershipRole::Committee
        ) {
            continue;
        }
        if e.scope.is_empty() {
            scope.insert(e.siren.to_string());
        } else {
            scope.extend(e.scope.iter().cloned());
        }
    }
    scope.into_iter().collect()
}

/// The members of `territory` if given, else of this node's scope, else of
/// its own territory, with what `viewer` may see of each (blocking: it
/// counts in the search index).
pub fn members(
    node: &Node,
    territory: Option<&str>,
    viewer: &Viewer,
) -> Result<Members, MembersError> {
    let (from, scope) = match territory.map(str::trim).filter(|t| !t.is_empty()) {
        Some(t) => {
            territory::coverage(t).map_err(MembersError::BadRequest)?;
            (ScopeFrom::Asked, vec![t.to_string()])
        }
        None => match scope(node) {
            s if !s.is_empty() => (ScopeFrom::Membership, s),
            _ => (ScopeFrom::OwnTerritory, vec![node.siren().to_string()]),
        },
    };
    let own = node.siren().as_str();
    let mut sirens: BTreeSet<String> = BTreeSet::new();
    for entry in &scope {
        match territory::coverage(entry) {
            Ok(places) => {
                for place in places {
                    // A commune by its code, not a scan of the whole list:
                    // a scope may name thousands of them.
                    match &place {
                        Place::Commune(insee) => {
                            sirens.extend(territory::by_insee(insee).map(|c| c.siren.clone()))
                        }
                        _ => sirens.extend(within(&place).map(|c| c.siren.clone())),
                    }
                }
            }
            // A SIREN the reference list does not hold: that organisation.
            Err(_) => {
                if Siren::parse(entry).is_ok() {
                    sirens.insert(entry.clone());
                }
            }
        }
        if sirens.len() > MAX_MEMBERS {
            return Err(MembersError::BadRequest(format!(
                "the scope holds more than {MAX_MEMBERS} collectivities: ask for one territory with --territory"
            )));
        }
    }
    sirens.remove(own);
    let listed: Vec<String> = sirens.iter().cloned().collect();
    let activity = node
        .search()
        .activity(&listed, &node.public_key(), viewer)?;
    let trust = node.trust();
    let mut members: Vec<Member> = sirens
        .into_iter()
        .map(|siren| {
            let known = territory::by_siren(&siren);
            let runs_node = Siren::parse(&siren)
                .is_ok_and(|s| trust.keys_named_for(&s).iter().any(|k| trust.is_member(k)));
            Member {
                name: known.map_or_else(|| format!("SIREN {siren}"), |c| c.name.clone()),
                kind: known.map(|c| c.kind),
                runs_node,
                activity: activity.get(&siren).cloned().unwrap_or_default(),
                siren,
            }
        })
        .collect();
    // Councils first, then EPCIs, then communes; by name within each.
    let rank = |k: Option<OrganisationKind>| match k {
        Some(OrganisationKind::Region) => 0,
        Some(OrganisationKind::Departement) => 1,
        Some(OrganisationKind::Epci) => 2,
        Some(OrganisationKind::Commune) => 3,
        _ => 4,
    };
    members.sort_by(|a, b| (rank(a.kind), &a.name).cmp(&(rank(b.kind), &b.name)));
    Ok(Members {
        from,
        scope,
        members,
    })
}

/// The collectivities of the reference list within `place`: a commune
/// itself; an EPCI and its communes; a département's council, EPCIs and
/// communes; a région's council, départements, EPCIs and communes.
fn within(place: &Place) -> impl Iterator<Item = &'static territory::Collectivity> + '_ {
    territory::all().iter().filter(move |c| match place {
        Place::Commune(i) => c.insee.as_deref() == Some(i.as_str()),
        Place::Epci(s) => c.siren == *s || c.epci_siren.as_deref() == Some(s.as_str()),
        Place::Departement(d) => {
            c.places.contains(place)
                || (matches!(c.kind, OrganisationKind::Commune | OrganisationKind::Epci)
                    && c.departement.as_deref() == Some(d.as_str()))
        }
        Place::Region(r) => c.region.as_deref() == Some(r.as_str()),
    })
}

impl Members {
    /// How many run a node this node trusts.
    pub fn running_a_node(&self) -> usize {
        self.members.iter().filter(|m| m.runs_node).count()
    }

    /// How many have neither a dataset nor a project here.
    pub fn without_catalogue(&self) -> usize {
        self.members
            .iter()
            .filter(|m| m.activity.datasets == 0 && m.activity.projects == 0)
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An EPCI's scope holds its communes; a département's, its EPCIs and
    /// communes; a région's, its départements too.
    #[test]
    fn a_territory_holds_its_collectivities() {
        let tm: Vec<&str> = within(&Place::Epci("243100518".into()))
            .map(|c| c.name.as_str())
            .collect();
        assert!(
            tm.contains(&"Colomiers") && tm.contains(&"Toulouse"),
            "{tm:?}"
        );
        assert!(!tm.contains(&"Muret"), "{tm:?}");
        let hg: Vec<&territory::Collectivity> = within(&Place::Departement("31".into())).collect();
        assert!(hg.iter().any(|c| c.siren == "223100017"), "no council");
        assert!(hg.iter().any(|c| c.siren == "243100518"));
        assert!(hg.len() > 500, "{}", hg.len());
        let occitanie: Vec<&territory::Collectivity> =
            within(&Place::Region("76".into())).collect();
        assert!(occitanie.iter().any(|c| c.siren == "223100017"));
        assert!(occitanie.iter().any(|c| c.siren == "200053791"));
    }
}
