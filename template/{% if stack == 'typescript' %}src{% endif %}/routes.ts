// Which paths the service serves and with which methods, collected from the
// registered routes: it tells a wrong method (405) from an unknown path (404)
// and names the route template in metrics, also for requests that never
// reached a handler.

interface Route {
  template: string;
  pattern: RegExp;
  methods: Set<string>;
}

export class RouteTable {
  private readonly routes = new Map<string, Route>();

  add(url: string, methods: readonly string[]): void {
    const template = url.replace(/:([A-Za-z_][A-Za-z0-9_]*)/g, "{$1}");
    let route = this.routes.get(template);
    if (route === undefined) {
      const source = template
        .split(/\{[^}]+\}/)
        .map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"))
        .join("[^/]+");
      route = { template, pattern: new RegExp(`^${source}$`), methods: new Set() };
      this.routes.set(template, route);
    }
    for (const method of methods) route.methods.add(method);
  }

  /** The route template a raw path falls under, and its methods; null when none. */
  match(path: string): { template: string; methods: string[] } | null {
    const bare = path.split("?", 1)[0] ?? "";
    for (const route of this.routes.values()) {
      if (route.pattern.test(bare))
        return { template: route.template, methods: [...route.methods].sort() };
    }
    return null;
  }
}

/** Fastify's `/items/:id` as the contract's `/items/{id}`. */
export function routeTemplate(url: string): string {
  return url.replace(/:([A-Za-z_][A-Za-z0-9_]*)/g, "{$1}");
}
