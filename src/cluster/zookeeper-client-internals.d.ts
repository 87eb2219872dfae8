// node-zookeeper-client's connection manager, which zookeeper-registrar.ts guards against an
// upstream parse bug. The package ships no declarations for its lib/ files.
declare module 'node-zookeeper-client/lib/ConnectionManager.js' {
  const ConnectionManager: { prototype: object };
  export default ConnectionManager;
}
