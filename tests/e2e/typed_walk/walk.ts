// The story of docs/examples.md as a browser client would type it, against the types
// openapi-typescript generates from each document (./users.d.ts ... next to this file in
// the test's folder). Compile-only (tsc --strict --noEmit): tests/e2e/test_typescript_types.py.
import type { components as U, paths as UsersPaths } from "./users";
import type { components as C, paths as CatalogPaths } from "./catalog";
import type { components as O, paths as OrdersPaths } from "./orders";
import type { components as Ch, paths as ChatPaths } from "./chat";

type Json<R> = R extends { content: { "application/json": infer B } } ? B : never;
type Problem = U["schemas"]["Problem"];

// register, verify, log in, refresh
const account: U["schemas"]["RegisterIn"] = {
  email: "ada@fixup.test",
  password: "correct horse battery",
  first_name: "Ada",
  last_name: "Lovelace",
  phone_number: "+1 555 0100",
  role: "CUSTOMER",
};
declare const registered: Json<UsersPaths["/v1/auth/register"]["post"]["responses"][201]>;
const userId: string = registered.data.id;
const verify: U["schemas"]["TokenIn"] = { token: "from the mail" };
const login: U["schemas"]["LoginIn"] = { email: account.email, password: account.password };
declare const session: Json<UsersPaths["/v1/auth/login"]["post"]["responses"][200]>;
const refresh: U["schemas"]["RefreshIn"] = { refresh_token: session.data.refresh_token };
const bearer: string = `Bearer ${session.data.access_token}`;

// `me` where an id goes, and the points
const me: UsersPaths["/v1/users/{id}"]["get"]["parameters"]["path"] = { id: "me" };
declare const profile: Json<UsersPaths["/v1/users/{id}"]["get"]["responses"][200]>;
const points: number | null = profile.data.points; // null: points did not answer
const pictureUrl: string | null = profile.data.picture_url;

// the picture: a multipart form with its `image` field, fetched back with its signature
type Upload = UsersPaths["/v1/users/{id}/picture"]["put"]["requestBody"]["content"];
const upload: Upload["multipart/form-data"] = { image: "<the file>" };
type Signed = UsersPaths["/v1/pictures/{key}"]["get"]["parameters"]["query"];
const signed: Signed = { expires: "1700000000", sig: "ab12" };
// @ts-expect-error: `sig` is required, as the handler reads it
const unsigned: Signed = { expires: "1700000000" };

// the catalog, built by an ADMIN; a provider offers the service at `me`
const kind: C["schemas"]["CategoryTypeCreate"] = { name: "Home" };
declare const madeKind: Json<CatalogPaths["/v1/category-types"]["post"]["responses"][201]>;
const category: C["schemas"]["CategoryCreate"] = { type_id: madeKind.data.id, name: "Plumbing" };
const offered: CatalogPaths["/v1/providers/{id}/services/{service_id}"]["put"]["parameters"]["path"] =
  { id: "me", service_id: madeKind.data.id };

// archived, not deleted (ADR 0058): an ADMIN lists by state; the restore answers the row
type ServiceQuery = CatalogPaths["/v1/services"]["get"]["parameters"]["query"];
const archivedOnes: ServiceQuery = { state: "archived" };
// @ts-expect-error: a state the list does not have
const deletedOnes: ServiceQuery = { state: "deleted" };
declare const restored: Json<CatalogPaths["/v1/services/{id}/restore"]["post"]["responses"][200]>;
const archivedAt: string | null = restored.data.archived_at;

// order -> offer -> accept -> start -> complete -> review
const order: O["schemas"]["OrderCreate"] = {
  service_id: "9c4f0c9e-8d4e-4f7a-9a53-2b1d1f0c8a11",
  description: "The tap drips",
  address: "1 Client Road",
  time_start: "2031-05-01T09:00:00+00:00",
  time_end: "2031-05-01T11:00:00+00:00",
};
const offer: O["schemas"]["OfferCreate"] = {
  price: "95.50", currency: "EUR", book_time: "2031-05-01T09:00:00+00:00", message: "At nine",
};
declare const job: Json<OrdersPaths["/v1/orders/{id}/offers/{offer_id}/accept"]["post"]["responses"][200]>;
const started: OrdersPaths["/v1/jobs/{id}/start"]["post"]["parameters"]["path"] = { id: job.data.id };
const review: O["schemas"]["ReviewCreate"] = { rating: 5, comment: "Dry at last" };

// chat
const conversation: Ch["schemas"]["ConversationCreate"] = { order_id: job.data.order_id, provider_id: userId };
const message: Ch["schemas"]["MessageCreate"] = { body: "Is nine fine?" };

// the error shape every 4xx/5xx has
declare const refused: Json<OrdersPaths["/v1/orders"]["get"]["responses"][401]>;
const problem: Problem = refused;
const fields: string[] = (problem.errors ?? []).map((e) => e.field);

export const walk = [
  verify, login, refresh, bearer, me, points, pictureUrl, upload, signed, unsigned, kind,
  category, offered, archivedOnes, deletedOnes, archivedAt, order, offer, started, review,
  conversation, message, fields,
];
