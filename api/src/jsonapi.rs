//! JSON:API response documents: resource objects (`id`, `type`, `attributes`, `relationships`,
//! `links`), single-resource and list documents (`links.next` for the following page), and the
//! responses carrying them.

use std::collections::BTreeMap;

use actix_web::HttpResponse;
use actix_web::http::header;
use serde::Serialize;
use utoipa::ToSchema;

use crate::query::Page;

/// The JSON:API media type of every response document.
pub const MEDIA_TYPE: &str = "application/vnd.api+json";

/// A resource object.
#[derive(Debug, Serialize, ToSchema)]
pub struct Resource<A> {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub attributes: A,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub relationships: BTreeMap<&'static str, Relationship>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub links: Option<Links>,
}

impl<A> Resource<A> {
    pub fn new(
        kind: &'static str,
        id: impl Into<String>,
        attributes: A,
        self_link: String,
    ) -> Self {
        Self {
            links: Some(Links::to(self_link)),
            ..Self::unlinked(kind, id, attributes)
        }
    }

    /// A resource without a URL of its own (log lines, events).
    pub fn unlinked(kind: &'static str, id: impl Into<String>, attributes: A) -> Self {
        Self {
            id: id.into(),
            kind,
            attributes,
            relationships: BTreeMap::new(),
            links: None,
        }
    }

    /// Adds a to-one relationship; `None` renders as `"data": null`.
    pub fn related(
        mut self,
        name: &'static str,
        target: Option<Identifier>,
        related: Option<String>,
    ) -> Self {
        let links = related.map(|related| RelatedLink { related });
        self.relationships.insert(
            name,
            Relationship {
                links,
                data: target,
            },
        );
        self
    }

    /// Adds a link beside `self` (e.g. `versions`).
    pub fn link(mut self, name: &'static str, href: String) -> Self {
        if let Some(links) = self.links.as_mut() {
            links.others.insert(name, href);
        }
        self
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Links {
    #[serde(rename = "self")]
    pub self_link: String,
    #[serde(flatten)]
    pub others: BTreeMap<&'static str, String>,
}

impl Links {
    fn to(self_link: String) -> Self {
        Self {
            self_link,
            others: BTreeMap::new(),
        }
    }
}

/// A resource identifier object.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Identifier {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub id: String,
}

impl Identifier {
    pub fn new(kind: &'static str, id: impl Into<String>) -> Self {
        Self {
            kind,
            id: id.into(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Relationship {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub links: Option<RelatedLink>,
    pub data: Option<Identifier>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RelatedLink {
    pub related: String,
}

/// A document with one resource.
#[derive(Debug, Serialize, ToSchema)]
pub struct Single<A> {
    pub data: Resource<A>,
}

/// A document with one resource and, when asked for with `include`, the resources it includes.
#[derive(Debug, Serialize, ToSchema)]
pub struct Including<A, I> {
    pub data: Resource<A>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub included: Option<Vec<Resource<I>>>,
}

/// A document with one resource and top-level `meta`.
#[derive(Debug, Serialize, ToSchema)]
pub struct WithMeta<A, M> {
    pub data: Resource<A>,
    pub meta: M,
}

/// A page of a list, with the link to the next page.
#[derive(Debug, Serialize, ToSchema)]
pub struct List<A> {
    pub data: Vec<Resource<A>>,
    pub links: ListLinks,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ListLinks {
    /// The next page, absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// `200 OK` with one resource.
pub fn ok<A: Serialize>(resource: Resource<A>) -> HttpResponse {
    respond(HttpResponse::Ok(), &Single { data: resource })
}

/// `201 Created` with the new resource and a `Location` header at its `self` link.
pub fn created<A: Serialize>(resource: Resource<A>) -> HttpResponse {
    let mut builder = HttpResponse::Created();
    if let Some(links) = &resource.links {
        builder.insert_header((header::LOCATION, links.self_link.clone()));
    }
    respond(builder, &Single { data: resource })
}

/// `200 OK` with one resource and the resources it includes.
pub fn ok_with_included<A: Serialize, I: Serialize>(
    resource: Resource<A>,
    included: Option<Vec<Resource<I>>>,
) -> HttpResponse {
    respond(
        HttpResponse::Ok(),
        &Including {
            data: resource,
            included,
        },
    )
}

/// `200 OK` with one resource and top-level `meta`.
pub fn ok_with_meta<A: Serialize, M: Serialize>(resource: Resource<A>, meta: M) -> HttpResponse {
    respond(
        HttpResponse::Ok(),
        &WithMeta {
            data: resource,
            meta,
        },
    )
}

/// `200 OK` with a page of rows as resources and the link to the next page, if any.
pub fn list<T, A: Serialize>(
    page: Page<T>,
    resource: impl FnMut(T) -> Resource<A>,
) -> HttpResponse {
    let document = List {
        data: page.rows.into_iter().map(resource).collect(),
        links: ListLinks { next: page.next },
    };
    respond(HttpResponse::Ok(), &document)
}

/// `204 No Content`.
pub fn no_content() -> HttpResponse {
    HttpResponse::NoContent().finish()
}

fn respond<T: Serialize>(
    mut builder: actix_web::HttpResponseBuilder,
    document: &T,
) -> HttpResponse {
    builder.content_type(MEDIA_TYPE).json(document)
}
